"""An app served in this process (``build_asgi`` behind Starlette's TestClient), spoken to as MCP
clients of both protocol eras speak: one POST per message, each answer as the client reads it.

- 2026-07-28 ("modern"): no handshake; every request carries ``Mcp-Protocol-Version``, ``Mcp-Method``
  and ``Mcp-Name`` headers and the client's version, info and capabilities in ``_meta``.
- 2025-11-25 ("handshake"): ``initialize`` (declaring the client's capabilities), then
  ``notifications/initialized``, then requests in that ``Mcp-Session-Id`` session.

An SSE answer is read event by event: when the server sends the client a request mid-call (an
``elicitation/create``), reading stops there, as with a client that cannot answer, so a test sees
the question instead of waiting for ever.

Also the app the pipeline tests (tests/resource/test_pipeline*.py) serve once per refusal style,
whose author code records in ``RAN`` that it ran, and the readers of the refusals they expect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import Field
from starlette.testclient import TestClient

from ringfence import App, Scope
from ringfence.audit.log import AuditLog
from ringfence.config import MCP_PATH, Settings
from ringfence.ops.ratelimit import Rate
from ringfence.ops.ratelimit_keys import RateLimits
from ringfence.server import build_asgi
from ringfence.store.database import Database
from tests.support.http import challenge, parse_bearer_challenge, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import LEGACY_VERSION, MCP_ACCEPT, MODERN_VERSION

BASE_URL = "http://127.0.0.1:8000"
RESOURCE = BASE_URL + MCP_PATH  # the tokens' audience
METADATA_URL = BASE_URL + "/.well-known/oauth-protected-resource/mcp"
CLIENT_INFO = {"name": "ringfence-tests", "version": "0"}
ELICITATION = {"elicitation": {"form": {}}}

Era = Literal["modern", "handshake"]


class InProcessServer:
    """One app under one set of settings, with its lifespan (database, SDK session manager) running."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.http = TestClient(build_asgi(app, settings), base_url=BASE_URL)

    def post(self, body: bytes, *, token: str | None = None, headers: dict[str, str] | None = None,
             query: str = "") -> httpx.Response:
        """One POST to /mcp; an SSE answer is read up to its end, or up to a request to the client."""
        sent = {"content-type": "application/json", "accept": MCP_ACCEPT, **(headers or {})}
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        with self.http.stream("POST", MCP_PATH + (f"?{query}" if query else ""), content=body,
                              headers=sent) as answer:
            if not answer.headers.get("content-type", "").startswith("text/event-stream"):
                answer.read()
                return answer
            lines = []
            for line in answer.iter_lines():
                lines.append(line)
                if line.startswith("data:") and is_server_request(json.loads(line[5:])):
                    break  # the server waits for the client's answer: stop reading here
        return httpx.Response(answer.status_code, headers=answer.headers, content="\n".join(lines).encode(),
                              request=answer.request)

    def audit(self, **filters: Any) -> list[tuple[str, str]]:
        """``(kind, outcome)`` of the audit records matching ``filters`` (AuditLog.query), oldest first."""

        async def query() -> list[tuple[str, str]]:
            database = Database(self.settings.resolved_database_url)
            try:
                log = AuditLog(database, self.settings.data_dir)
                return [(record.kind, record.outcome) async for record in log.query(**filters)]
            finally:
                await database.close()

        assert self.http.portal is not None, "the server is not running"
        return self.http.portal.call(query)


@contextmanager
def serve_in_process(app: App, idp: TestIdentityProvider, data_dir: Path, **settings: Any) -> Iterator[InProcessServer]:
    """``app`` served as ``ringfence serve --issuer <idp> --jwks-url <idp> --public-url BASE_URL`` would."""
    values = {"issuer": idp.issuer, "jwks_url": idp.jwks_url, "public_url": BASE_URL, "data_dir": data_dir,
              **settings}
    loaded = Settings(**values)  # not Settings.load, which refuses the tests' own RINGFENCE_TEST_POSTGRES
    loaded.check()
    server = InProcessServer(app, loaded)
    with server.http:
        yield server


def token_for(idp: TestIdentityProvider, scope: str, subject: str | None = None) -> str:
    """An access token for this resource, for a user no other test uses unless ``subject`` is given."""
    return idp.token(RESOURCE, sub=subject or new_subject(), scope=scope)


@dataclass(frozen=True)
class Client:
    """One kind of MCP client: its protocol era, the ``_meta`` it adds to calls (ChatGPT's
    ``openai/*`` keys), and whether it declares form elicitation."""

    server: InProcessServer
    era: Era
    meta: dict[str, Any] = field(default_factory=dict)
    elicitation: bool = False

    def eliciting(self) -> Client:
        """The same client, declaring the form elicitation capability."""
        return replace(self, elicitation=True)

    def in_era(self, era: Era) -> Client:
        return replace(self, era=era)

    def open_session(self, token: str | None) -> str | None:
        """Handshake era: ``initialize`` + ``notifications/initialized``; the session id (None in the modern era)."""
        if self.era == "modern":
            return None
        opened = self.server.post(_json({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION, "capabilities": ELICITATION if self.elicitation else {},
            "clientInfo": CLIENT_INFO}}), token=token)
        assert opened.status_code == 200, f"initialize: HTTP {opened.status_code}: {opened.text}"
        session = opened.headers["mcp-session-id"]
        initialized = self.server.post(_json({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                                       token=token, headers=self._headers(session))
        assert initialized.status_code == 202, f"notifications/initialized: HTTP {initialized.status_code}"
        return session

    def close_session(self, session: str, token: str | None) -> None:
        """DELETE the session (MCP Streamable HTTP), ending any call in it that waits for the client."""
        closed = self.server.http.delete(MCP_PATH, headers={**self._headers(session), **(
            {"authorization": f"Bearer {token}"} if token else {})})
        assert closed.status_code == 200, f"DELETE: HTTP {closed.status_code}: {closed.text}"

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None, *, token: str | None = None,
                  session: str | None = None, headers: dict[str, str] | None = None, query: str = "",
                  **params: Any) -> httpx.Response:
        """``tools/call``. Handshake era: in ``session``, else in a session just opened with ``token``."""
        routing = {"mcp-name": name} if self.era == "modern" else {}
        return self.send(self.tool_call(name, arguments or {}, **params), token=token, session=session,
                         headers={**routing, **(headers or {})}, query=query)

    def send(self, body: bytes, *, token: str | None = None, session: str | None = None,
             headers: dict[str, str] | None = None, query: str = "") -> httpx.Response:
        """A ``tools/call`` body as given (bytes: it may be anything), with this era's headers."""
        if self.era == "handshake" and session is None:
            session = self.open_session(token)
        return self.server.post(body, token=token, headers={**self._headers(session), **(headers or {})},
                                query=query)

    def tool_call(self, name: str, arguments: dict[str, Any], **params: Any) -> bytes:
        """The ``tools/call`` message this client sends (``params``: e.g. inputResponses, requestState)."""
        meta = dict(self.meta)
        if self.era == "modern":
            meta = {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                    "io.modelcontextprotocol/clientCapabilities": ELICITATION if self.elicitation else {}, **meta}
        message_params = {"name": name, "arguments": arguments, **params, **({"_meta": meta} if meta else {})}
        return _json({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": message_params})

    def _headers(self, session: str | None) -> dict[str, str]:
        if self.era == "modern":
            headers = {"mcp-protocol-version": MODERN_VERSION, "mcp-method": "tools/call"}
        else:
            headers = {"mcp-protocol-version": LEGACY_VERSION}
        return {**headers, **({"mcp-session-id": session} if session else {})}


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


# Reading answers (beyond tests/support/http.py) ----------------------------------------------------


def is_server_request(message: Any) -> bool:
    """A JSON-RPC request from the server to the client (e.g. ``elicitation/create``)."""
    return isinstance(message, dict) and "method" in message and "id" in message


def server_requests(response: httpx.Response) -> list[dict[str, Any]]:
    """The requests the server sent the client in this answer (SSE), e.g. ``elicitation/create``."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return []
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return [event for event in events if is_server_request(event)]


def result_challenge(result: dict[str, Any]) -> dict[str, str]:
    """The one challenge of a tool-result refusal (Apps SDK: ``_meta["mcp/www_authenticate"]``), parsed."""
    assert result.get("isError") is True, f"not a refusal: {result}"
    challenges = result.get("_meta", {}).get("mcp/www_authenticate")
    assert isinstance(challenges, list) and len(challenges) == 1, f"expected one challenge in {result}"
    return parse_bearer_challenge(challenges[0])


# The app under test, served once per refusal style ----------------------------------------------

RAN: list[str] = []  # every piece of author code (a tool, the preview) appends its name when it runs
TOO_BIG = 2**70  # delete_note's preview raises OverflowError for this id
CHATGPT = {"openai/session": "chatgpt-session-1"}  # ChatGPT marks its calls with openai/* keys in _meta
STYLES = ("http", "tool-result", "auto")
# Each kind of client: the server's refusal style, and the _meta its calls carry.
KINDS = {"http": ("http", {}), "tool-result": ("tool-result", {}), "auto": ("auto", {}),
         "auto-chatgpt": ("auto", CHATGPT)}
Servers = dict[str, InProcessServer]  # by refusal style
CLIENTS = [(kind, era) for kind in KINDS for era in ("modern", "handshake")]  # fixture params: every client


def notes_app() -> App:
    """A public read, a protected read and write, a destructive tool with a preview, a tool that
    fails, and a tool with a budget of two calls a minute for all callers together."""
    app = App("notes", scopes=[Scope("notes:read", "Read your notes"),
                               Scope("notes:write", "Change your notes", implies=["notes:read"])],
              rate_limits=RateLimits(per_address=None, tools={"count_notes": Rate(2, 60.0)}))

    @app.tool(effect="read")
    async def about() -> str:
        """What this app is."""
        RAN.append("about")
        return "notes"

    @app.tool(effect="read", scopes=["notes:read"])
    async def read_note(text: str = Field(max_length=100)) -> str:
        """Echoes the text it got."""
        RAN.append("read_note")
        return text

    @app.tool(effect="write", scopes=["notes:write"])
    async def write_note(text: str) -> str:
        """Saves a note."""
        RAN.append("write_note")
        return f"saved {text}"

    def describe_deletion(note_id: int) -> str:
        RAN.append("preview")
        if note_id == TOO_BIG:
            raise OverflowError(f"internal detail: note id {note_id} does not fit the notes table")
        return f"delete note {note_id}"

    @app.tool(effect="destructive", scopes=["notes:write"], preview=describe_deletion)
    async def delete_note(note_id: int) -> str:
        """Deletes a note."""
        RAN.append("delete_note")
        return f"deleted note {note_id}"

    @app.tool(effect="read", scopes=["notes:read"])
    async def explode() -> str:
        """Fails in a way the author did not foresee."""
        RAN.append("explode")
        raise RuntimeError("internal detail: postgres://admin:hunter2@db.internal is down")

    @app.tool(effect="read", scopes=["notes:read"])
    async def count_notes() -> int:
        """Counts notes."""
        RAN.append("count_notes")
        return 0

    return app


@contextmanager
def serve_each_style(idp: TestIdentityProvider, folders: pytest.TempPathFactory) -> Iterator[Servers]:
    """The notes app under each refusal style, all running at once."""
    with (serve_in_process(notes_app(), idp, folders.mktemp("http"), refusal_style="http") as http,
          serve_in_process(notes_app(), idp, folders.mktemp("tool-result"), refusal_style="tool-result") as tr,
          serve_in_process(notes_app(), idp, folders.mktemp("auto"), refusal_style="auto") as auto):
        yield dict(zip(STYLES, (http, tr, auto), strict=True))


def client_of(servers: Servers, kind: str, era: Era) -> Client:
    style, meta = KINDS[kind]
    return Client(servers[style], era, meta)


def gets_tool_results(client: Client) -> bool:
    """Whether auth refusals reach this client as tool results: ``tool-result`` style, or ``auto`` for ChatGPT."""
    style = client.server.settings.refusal_style
    return style == "tool-result" or (style == "auto" and any(key.startswith("openai/") for key in client.meta))


def auth_refusal(client: Client, response: httpx.Response, status: int) -> dict[str, str]:
    """The challenge of a missing-token or scope refusal, in the client's form: HTTP ``status`` with
    ``WWW-Authenticate``, or HTTP 200 with a tool result carrying it in ``_meta``. Nothing was asked first."""
    assert server_requests(response) == [], "the server asked the client something before refusing"
    if gets_tool_results(client):
        assert "www-authenticate" not in response.headers
        return result_challenge(tool_result(response))
    assert response.status_code == status, f"HTTP {response.status_code}: {response.text}"
    return challenge(response)


def spend_budget(client: Client, tool: str, token: str) -> None:
    """Call ``tool`` until its budget is spent (count_notes allows two calls a minute, all callers together)."""
    for _ in range(3):
        if client.call_tool(tool, token=token).status_code == 429:
            return
    pytest.fail(f"{tool} was never rate-limited")
