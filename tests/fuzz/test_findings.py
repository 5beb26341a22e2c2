"""What the fuzz found, each as the one request that showed it, with the answer it must get now.

Every one of these answered 500, or made the server log a traceback, before its fix; the fuzz
tests find them again (derandomized), these say plainly what was wrong.
"""

from __future__ import annotations

import json

from tests.fuzz.oauth_requests import FORM, form
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import Request, Wire
from tests.support.http import result_text, tool_result
from tests.support.oauth import LOOPBACK_REDIRECT
from tests.support.serve import MCP_ACCEPT, MODERN_VERSION

FINDINGS = "findings"


def test_csrf_token_with_non_ascii_characters_gets_403_not_500(wire: Wire, target: FuzzTarget) -> None:
    """A form's CSRF field with a non-ASCII character, in a real browser session: refused like any
    wrong token (``hmac.compare_digest`` raised TypeError on non-ASCII str, a 500)."""
    person = target.pages
    for path in ("/login", "/account/revoke", "/account/export", f"/confirm/{person.confirm_page}"):
        answer = wire.send(FINDINGS, Request("POST", path, [("cookie", person.cookie_header()), FORM],
                                             form([("csrf", "\u0080" + person.csrf[1:])]).encode()))
        assert answer.status_code == 403, f"{path}: {answer.status_code} {answer.text[:200]}"


def test_registration_with_jwks_that_is_not_a_key_set_gets_400(wire: Wire) -> None:
    """RFC 7591 §2 / §3.2.2: ``jwks`` that is not a JWK Set is bad client metadata, a 400 (it was
    a TypeError or KeyError inside Authlib's ``validate_jwks``, a 500)."""
    for jwks in (None, 1, [], "keys", {}, {"keys": 1}, {"keys": [1]}):
        document = {"redirect_uris": [LOOPBACK_REDIRECT], "jwks": jwks}
        answer = wire.send(FINDINGS, Request("POST", "/register", [("content-type", "application/json")],
                                             json.dumps(document).encode()))
        assert answer.status_code == 400, f"jwks={jwks!r}: {answer.status_code} {answer.text[:200]}"
        assert answer.json()["error"] == "invalid_client_metadata", answer.text


def test_registration_with_grant_or_response_types_that_are_not_string_lists_gets_400(wire: Wire) -> None:
    """RFC 7591 §2: ``grant_types`` and ``response_types`` are arrays of strings; any other shape is bad
    client metadata, a 400 (``true`` or ``null`` raised TypeError in the registration check, a 500)."""
    for name in ("grant_types", "response_types"):
        for value in (True, None, 1, "authorization_code", {}, [1], [None]):
            document = {"redirect_uris": [LOOPBACK_REDIRECT], name: value}
            answer = wire.send(FINDINGS, Request("POST", "/register", [("content-type", "application/json")],
                                                 json.dumps(document).encode()))
            assert answer.status_code == 400, f"{name}={value!r}: {answer.status_code} {answer.text[:200]}"
            assert answer.json()["error"] == "invalid_client_metadata", answer.text


def test_contact_id_beyond_the_id_column_is_a_bad_argument(wire: Wire, target: FuzzTarget) -> None:
    """``delete_contact`` with an id no SQL INTEGER holds: refused as an invalid argument before the
    preview runs (the reference app's preview overflowed SQLite, a traceback in the log)."""
    for contact_id in (2**31, 2**63, -1):
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "delete_contact", "arguments": {"contact_id": contact_id},
            "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                      "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
                      "io.modelcontextprotocol/clientCapabilities": {}}}}
        headers = [("content-type", "application/json"), ("accept", MCP_ACCEPT),
                   ("authorization", f"Bearer {target.writer}"), ("mcp-protocol-version", MODERN_VERSION),
                   ("mcp-method", "tools/call"), ("mcp-name", "delete_contact")]
        answer = wire.send(FINDINGS, Request("POST", "/mcp", headers, json.dumps(message).encode()))
        result = tool_result(answer)
        assert result.get("isError") is True, result
        assert "contact_id" in result_text(result), result


def test_a_session_stream_asked_to_resume_opens_a_fresh_stream_not_a_500(wire: Wire, target: FuzzTarget) -> None:
    """MCP streamable HTTP: resumability is optional, and ringfence keeps no event store, so a GET with
    ``Last-Event-ID`` opens an ordinary stream (the SDK, given the header without a store, returned no
    answer at all: uvicorn's 500)."""
    from tests.fuzz.test_mcp import Sessions  # the handshake-era sessions the fuzzer opens

    sessions = Sessions(target, wire)
    for kind, token in (("writer", target.writer), ("reader", target.reader)):
        headers = [("authorization", f"Bearer {token}"), ("accept", MCP_ACCEPT), ("mcp-protocol-version", "2025-11-25"),
                   ("last-event-id", "!"), *sessions.header(kind)]
        answer = wire.send(FINDINGS, Request("GET", "/mcp", headers, None, head_only=True))
        assert answer.status_code == 200, f"{kind}: {answer.status_code}"
        assert answer.headers["content-type"].startswith("text/event-stream")
