"""OpenAI's review-time tool scan sends ``Accept: */*`` and ``Content-Type: text/octet-stream``
(openai-apps-sdk-examples#183). A request whose body is valid JSON-RPC and that no browser sent (no
``Origin``) is served; everything else is answered as before, so a web page still cannot POST a
``text/plain`` "simple request" (no CORS preflight) and have it run.
"""

from __future__ import annotations

import json

from tests.support.http import jsonrpc_message, tool_result

SCANNER = {"content-type": "text/octet-stream", "accept": "*/*"}


def scanned(server, method: str, params: dict | None = None, **extra: str):
    headers = {**SCANNER, **extra}
    return server.request(method, params, headers=headers)


def test_the_review_scanners_listing_is_answered(contacts):
    listed = jsonrpc_message(scanned(contacts, "tools/list"))
    assert {tool["name"] for tool in listed["result"]["tools"]} >= {"search_contacts", "delete_contact"}


def test_the_review_scanners_call_of_a_public_tool_runs_and_a_protected_one_is_still_challenged(contacts):
    assert tool_result(scanned(contacts, "tools/call", {"name": "app_info", "arguments": {}}))["isError"] is False
    protected = scanned(contacts, "tools/call", {"name": "search_contacts", "arguments": {"query": ""}})
    assert protected.status_code == 401 and "resource_metadata=" in protected.headers["www-authenticate"]


INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "review-scan", "version": "0"}}}


def test_the_review_scanners_handshake_opens_a_session(contacts):
    opened = contacts.post(INITIALIZE, headers=SCANNER)
    assert opened.status_code == 200 and opened.headers["mcp-session-id"]
    assert jsonrpc_message(opened)["result"]["serverInfo"]["name"] == "contacts"


def test_a_browser_request_keeps_the_sdks_media_type_check(contacts):
    answer = contacts.post(INITIALIZE, headers={"content-type": "text/plain", "origin": contacts.base_url})
    assert answer.status_code == 400 and "mcp-session-id" not in answer.headers


def test_a_body_that_is_not_json_rpc_is_refused_whatever_the_media_types(contacts):
    answer = contacts.post(None, content=b"\x00\x01 not json", headers=SCANNER)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32700
    batch = contacts.post(None, content=json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]).encode(),
                          headers=SCANNER)
    assert batch.status_code == 400
