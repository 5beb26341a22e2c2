"""The access log never holds what a URL carried (a refused ``?access_token=``, OAuth parameters)."""

from __future__ import annotations

import json
import time

import httpx


def test_token_in_query_string_is_refused_and_never_written_to_the_log(contacts, idp):
    token = idp.token(contacts.mcp_url, scope="contacts:read")
    response = httpx.post(f"{contacts.mcp_url}?access_token={token}", json={"jsonrpc": "2.0", "id": 1,
                                                                           "method": "ping"})
    assert response.status_code == 400
    time.sleep(0.5)  # the access log line is written after the response
    logs = contacts.logs()
    access = [json.loads(line) for line in logs.splitlines() if '"logger":"uvicorn.access"' in line]
    assert ("POST", "/mcp", 400) in [(line["method"], line["path"], line["status"]) for line in access]
    assert token not in logs
    assert "access_token" not in logs
