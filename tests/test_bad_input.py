"""Malformed, oversized, misrouted or cross-site requests: clear 4xx answers, no crash, nothing internal leaked."""

from __future__ import annotations

import base64
import socket

import httpx
import pytest

from tests.support.contacts import add_contact, contact_names
from tests.support.http import assert_no_internals, jsonrpc_message, result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import LEGACY_VERSION, MCP_ACCEPT, MODERN_VERSION, ServeProcess

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


# Bodies the endpoint cannot route -------------------------------------------------------------


def test_non_json_body_gets_400_parse_error(contacts: ServeProcess) -> None:
    """JSON-RPC 2.0 §5.1: -32700 Parse error."""
    response = contacts.post(None, content=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32700
    assert_no_internals(response)


def test_json_rpc_batch_gets_400(contacts: ServeProcess) -> None:
    """MCP 2025-06-18 removed JSON-RPC batching: one message per request (-32600 Invalid Request)."""
    response = contacts.post([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}])
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32600
    assert_no_internals(response)


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 1, "method": 7},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["delete_contact"]},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {}}},
])
def test_malformed_json_rpc_gets_400_invalid_request(contacts: ServeProcess, message: dict) -> None:
    """JSON-RPC 2.0 §4: method is a string, params an object; tools/call names a tool (-32600)."""
    response = contacts.post(message)
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32600


def test_body_over_one_mebibyte_gets_413(contacts: ServeProcess) -> None:
    """Bounded work per request: more than 1 MiB is refused, announced by Content-Length."""
    response = contacts.post(None, content=b'{"pad": "' + b"x" * (1024 * 1024) + b'"}')
    assert response.status_code == 413
    assert_no_internals(response)


def test_chunked_body_over_one_mebibyte_gets_413(contacts: ServeProcess) -> None:
    """The limit holds without Content-Length too (Transfer-Encoding: chunked), counted while reading."""
    chunks = (b"x" * 65536 for _ in range(17))
    response = httpx.post(contacts.mcp_url, content=chunks,
                          headers={"content-type": "application/json", "accept": MCP_ACCEPT})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_oversized_content_length_is_refused_before_the_body_is_sent(contacts: ServeProcess) -> None:
    """Refused from the headers alone: a client announcing 2 MiB gets 413 without uploading a byte."""
    with socket.create_connection(("127.0.0.1", contacts.port), timeout=5) as connection:
        connection.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{contacts.port}\r\nContent-Type: application/json\r\n"
            f"Accept: {MCP_ACCEPT}\r\nContent-Length: 2097152\r\n\r\n".encode()
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413 ")


# Routing headers (MCP 2026-07-28) -------------------------------------------------------------


def test_mcp_name_header_not_matching_the_body_gets_400_header_mismatch(contacts: ServeProcess,
                                                                        idp: TestIdentityProvider) -> None:
    """MCP 2026-07-28 Streamable HTTP: Mcp-Name disagreeing with the body is 400 HeaderMismatch (-32020)."""
    owner = new_subject()
    contact_id = add_contact(contacts, idp, owner, "Header Hal")
    writer = idp.token(contacts.mcp_url, sub=owner, scope="contacts:write")
    response = contacts.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "delete_contact", "arguments": {"contact_id": contact_id}, "_meta": MODERN_META}},
        token=writer,
        headers={"mcp-protocol-version": MODERN_VERSION, "mcp-method": "tools/call", "mcp-name": "search_contacts"},
    )
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32020
    assert_no_internals(response)
    assert contact_names(contacts, idp, owner, "hal") == ["Header Hal"]


def test_mcp_name_of_a_public_tool_cannot_smuggle_a_protected_call(contacts: ServeProcess,
                                                                   idp: TestIdentityProvider) -> None:
    """A gateway routing on Mcp-Name must see the tool that runs: a public name over a protected body is refused."""
    owner = new_subject()
    contact_id = add_contact(contacts, idp, owner, "Smuggle Sid")
    reader = idp.token(contacts.mcp_url, sub=owner, scope="contacts:read")
    response = contacts.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "delete_contact", "arguments": {"contact_id": contact_id}, "_meta": MODERN_META}},
        token=reader,
        headers={"mcp-protocol-version": MODERN_VERSION, "mcp-method": "tools/call", "mcp-name": "app_info"},
    )
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32020
    assert contact_names(contacts, idp, owner, "sid") == ["Smuggle Sid"]


@pytest.mark.parametrize("version", [MODERN_VERSION, LEGACY_VERSION])
def test_a_base64_mcp_name_is_decoded_and_compared_in_either_era(contacts: ServeProcess, idp: TestIdentityProvider,
                                                                  version: str) -> None:
    """``=?base64?…?=`` names are compared once decoded (the SDK checks only 2026-07-28 requests): a public
    name encoded over a protected body, or one that does not decode, is 400 HeaderMismatch in both eras."""
    reader = idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read")
    for named in ("=?base64?" + base64.b64encode(b"app_info").decode() + "?=", "=?base64?!!!?="):
        response = contacts.post(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "delete_contact", "arguments": {"contact_id": 1}, "_meta": MODERN_META}},
            token=reader, headers={"mcp-protocol-version": version, "mcp-method": "tools/call", "mcp-name": named},
        )
        assert response.status_code == 400, (named, response.text)
        assert jsonrpc_message(response)["error"]["code"] == -32020, (named, response.text)


def test_mcp_method_header_not_matching_the_body_gets_400_header_mismatch(contacts: ServeProcess) -> None:
    """MCP 2026-07-28: Mcp-Method must equal the body's method (-32020)."""
    response = contacts.request("tools/list", headers={"mcp-method": "tools/call"})
    assert response.status_code == 400
    assert jsonrpc_message(response)["error"]["code"] == -32020


def test_duplicate_name_keys_cannot_split_the_gate_from_the_tool_that_runs(contacts: ServeProcess,
                                                                           idp: TestIdentityProvider) -> None:
    """RFC 8259 §4 leaves duplicate keys open; whichever name the server acts on, no unauthorized delete runs."""
    owner = new_subject()
    contact_id = add_contact(contacts, idp, owner, "Twin Tia")
    reader = idp.token(contacts.mcp_url, sub=owner, scope="contacts:read")
    body = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_contact", '
        f'"arguments": {{"contact_id": {contact_id}}}, "name": "app_info", "_meta": {{'
        f'"io.modelcontextprotocol/protocolVersion": "{MODERN_VERSION}", '
        '"io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}, '
        '"io.modelcontextprotocol/clientCapabilities": {}}}}'
    )
    response = contacts.post(None, content=body.encode(), token=reader,
                             headers={"mcp-protocol-version": MODERN_VERSION, "mcp-method": "tools/call",
                                      "mcp-name": "app_info"})
    assert response.status_code < 500
    assert contact_names(contacts, idp, owner, "tia") == ["Twin Tia"]


# Tool calls the tool cannot serve ---------------------------------------------------------------


def test_unknown_tool_gets_a_clear_error_not_a_5xx(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP tools: an unknown tool is an error the client can show, naming the tool."""
    response = contacts.call_tool("no_such_tool", {}, token=idp.token(contacts.mcp_url, scope="contacts:read"))
    assert response.status_code < 500
    message = jsonrpc_message(response)
    text = result_text(message["result"]) if "result" in message else message["error"]["message"]
    assert "no_such_tool" in text
    assert_no_internals(response)


@pytest.mark.parametrize(("tool", "arguments"), [
    ("delete_contact", {"contact_id": "not-a-number"}),
    ("delete_contact", {"contact_id": [1, 2]}),
    ("add_contact", {"name": {"first": "Ann"}}),
    ("add_contact", {}),
    ("add_contact", {"name": "x" * 201}),
])
def test_wrong_arguments_get_an_error_result_without_internals(contacts: ServeProcess, idp: TestIdentityProvider,
                                                               tool: str, arguments: dict) -> None:
    """MCP tools: argument validation failures are ``isError`` results; no traceback or file path leaks."""
    writer = idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:write")
    response = contacts.call_tool(tool, arguments, token=writer)
    result = tool_result(response)
    assert result["isError"] is True
    assert_no_internals(response)


# Host and Origin: DNS-rebinding protection -------------------------------------------------------


@pytest.mark.parametrize("path", ["/mcp", "/.well-known/oauth-protected-resource/mcp"])
def test_host_header_of_another_host_gets_421_before_anything_else(contacts: ServeProcess, path: str) -> None:
    """MCP transports (DNS rebinding) / RFC 9110 §15.5.20: a foreign Host is refused first, even before the token."""
    response = httpx.post(contacts.base_url + path, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={"host": "evil.example", "accept": MCP_ACCEPT, "authorization": "Bearer a.b.c"})
    assert response.status_code == 421
    assert "www-authenticate" not in response.headers
    assert_no_internals(response)


def test_loopback_host_names_are_served(contacts: ServeProcess) -> None:
    """Without a public URL, every loopback spelling of this port is this server."""
    for host in (f"127.0.0.1:{contacts.port}", f"localhost:{contacts.port}", f"[::1]:{contacts.port}"):
        assert httpx.get(contacts.metadata_url, headers={"host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_foreign_origin_on_mcp_gets_403_before_anything_else(contacts: ServeProcess, origin: str) -> None:
    """MCP transports: servers MUST validate Origin; a foreign page cannot even probe whether a token is valid."""
    response = contacts.call_tool("app_info", token="a.b.c", headers={"origin": origin})
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert_no_internals(response)


def test_same_origin_on_mcp_is_served(contacts: ServeProcess) -> None:
    """The server's own origin is allowed (a browser client served from it)."""
    assert contacts.call_tool("app_info", headers={"origin": contacts.base_url}).status_code == 200


def test_foreign_origin_may_read_the_public_metadata(contacts: ServeProcess) -> None:
    """RFC 9728 metadata is public and CORS-open: browser-based clients must be able to discover it."""
    response = httpx.get(contacts.metadata_url, headers={"origin": "https://client.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_message_that_is_neither_request_nor_response_gets_a_json_rpc_error(contacts) -> None:  # type: ignore[no-untyped-def]
    """JSON-RPC 2.0 §4/§5: no method, no result, no error: Invalid Request (-32600), and no SDK detail."""
    response = contacts.post({})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600
    assert "pydantic" not in response.text
