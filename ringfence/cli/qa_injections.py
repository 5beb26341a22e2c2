"""``ringfence qa injections``: fire injection prompts through every string argument of every tool.

The app is served in this process, on a throwaway SQLite data folder, as ``ringfence serve --issuer``
serves it (gate, screening, guards, audit log), except that its rate limits are off so that every
prompt is tried, and a tool confirmed only on the sign-in page (which needs the embedded
authorization server) is served as confirmed any way: it is never confirmed either way. Calls
carry an access token holding every scope of the app, signed by a key made for this run and
published only on a loopback port while it lasts. Each call is made as a user of its own, so what
the audit log recorded for that user is what happened to that call.

Outcomes, from the audit log:
  refused            screening refused the arguments; the tool never ran
  flagged            screening recorded an injection finding, and the tool ran
  held               a confirmed tool (destructive, irreversible): held for the user's confirmation,
                     which this command never gives
  reached_unflagged  the tool ran (it may have stored the prompt as data) and nothing was flagged
  error              the call could not be judged: nothing recorded, an HTTP error, or a value this
                     command made up for another field was refused
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from starlette.testclient import TestClient

from ringfence.app import App
from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind
from ringfence.cli.qa_arguments import ArgumentBuilder, display
from ringfence.config import MCP_PATH, Settings
from ringfence.jsonrpc import jsonrpc_response
from ringfence.ops.ratelimit_keys import RateLimits
from ringfence.server import build_asgi
from ringfence.store.database import Database

REFUSED, FLAGGED, HELD, REACHED_UNFLAGGED, ERROR = "refused", "flagged", "held", "reached_unflagged", "error"
OUTCOMES = (REFUSED, FLAGGED, HELD, REACHED_UNFLAGGED, ERROR)
RAN = frozenset({"ok", "error", "failed", "timeout"})  # tool.call outcomes of a tool that ran
HELD_OUTCOMES = frozenset({"confirmation_required", "declined"})
SHIPPED_CORPUS = "qa_prompts.jsonl"
BASE_URL = "http://127.0.0.1:8000"  # never bound: the app is called in-process
CLIENT_ID = "ringfence-qa"
PROTOCOL_VERSION = "2026-07-28"
MCP_ACCEPT = "application/json, text/event-stream"
MAX_PROMPT_CHARS = 20_000
NO_RATE_LIMITS = RateLimits(per_principal=None, per_address=None, per_client=None, per_tool=None, tools={},
                            per_anonymous_address=None)


class QaInputError(ValueError):
    """Input this command cannot work with; the message says what to fix."""


# Prompts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    text: str
    family: str  # "override", "exfiltration", ...; "team" when the team's file does not say
    source: str  # "ringfence:3" or "prompts.txt:12"


def shipped_prompts() -> list[Prompt]:
    """ringfence's own corpus: known attacks of several families and languages, every one flagged."""
    text = files("ringfence.detect").joinpath(SHIPPED_CORPUS).read_text(encoding="utf-8")
    return _parse_jsonl(text, "ringfence", default_family="ringfence")


def team_prompts(path: Path) -> list[Prompt]:
    """The team's prompts: ``*.jsonl`` (each line ``{"prompt": ..., "family": ...}`` or a JSON string),
    else plain text, one prompt a line (blank lines and lines starting with ``#`` skipped)."""
    if not path.is_file():
        raise QaInputError(f"no such prompts file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QaInputError(f"cannot read {path} as UTF-8 text: {exc}") from None
    if path.suffix.lower() == ".jsonl":
        prompts = _parse_jsonl(text, path.name, default_family="team")
    else:
        prompts = [Prompt(line, "team", f"{path.name}:{number}") for number, line in enumerate(text.splitlines(), 1)
                   if line.strip() and not line.startswith("#")]
    if not prompts:
        raise QaInputError(f"{path} holds no prompts (one a line; blank lines and # comments are skipped)")
    for prompt in prompts:
        if len(prompt.text) > MAX_PROMPT_CHARS:
            raise QaInputError(f"{prompt.source}: a prompt longer than {MAX_PROMPT_CHARS} characters")
    return prompts


def _parse_jsonl(text: str, name: str, *, default_family: str) -> list[Prompt]:
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise QaInputError(f"{name}:{number} is not JSON (a .jsonl file holds one JSON value a line)") from None
        if isinstance(value, dict):
            text_value, family = value.get("prompt"), value.get("family", default_family)
        else:
            text_value, family = value, default_family
        if not isinstance(text_value, str) or not text_value.strip() or not isinstance(family, str):
            raise QaInputError(f'{name}:{number} must be a string or {{"prompt": "...", "family": "..."}}')
        prompts.append(Prompt(text_value, family, f"{name}:{number}"))
    return prompts


# The app, served here ---------------------------------------------------------------------------


class _OnlyGiven(Settings):
    """Settings from the arguments only: never the operator's RINGFENCE_* variables (their database,
    their Redis), so the run cannot touch real data."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **sources: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class _KeyServer:
    """The run's signing key, its public half published at ``/jwks.json`` on a loopback port."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "qa-1", "alg": "ES256", "use": "sig"})
        body = json.dumps({"keys": [self.key.as_dict(private=False)]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path == "/jwks.json"
                self.send_response(200 if found else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _KeyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, audience: str, subject: str, scopes: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": audience, "client_id": CLIENT_ID, "scope": scopes,
                  "iat": now, "exp": now + 3600, "jti": secrets.token_hex(8)}
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "qa-1"}, claims, self.key, algorithms=["ES256"])


def qa_copy(app: App) -> App:
    """The app as served for this run: rate limits off; a tool confirmed only on the signed-in page
    (which needs the embedded authorization server) confirmed any way, so that it is served; it is
    never confirmed either way."""
    served = copy.copy(app)
    served.rate_limits = NO_RATE_LIMITS
    served._tools = {name: dataclasses.replace(spec, confirm="any") if spec.confirm == "page" else spec
                     for name, spec in app.tools.items()}
    return served


@dataclass(frozen=True)
class Call:
    """What happened to one call, read from the audit log of its own user."""

    outcome: str
    detail: str  # the tool's outcome, the refusal's rule, the finding's rules, or the error
    rules: tuple[str, ...] = ()


class LocalApp:
    """The app served in this process on a throwaway data folder, called as MCP clients call it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.scopes = " ".join(sorted(app.scopes))
        self._count = 0

    @contextmanager
    def running(self) -> Iterator[LocalApp]:
        with tempfile.TemporaryDirectory(prefix="ringfence-qa-") as folder, _KeyServer() as keys:
            self.keys = keys
            self.settings = _OnlyGiven(issuer=keys.issuer, jwks_url=keys.issuer + "/jwks.json", public_url=BASE_URL,
                                       data_dir=Path(folder) / "data", metrics=False)
            self.settings.check()
            self.client = TestClient(build_asgi(qa_copy(self.app), self.settings), base_url=BASE_URL,
                                     raise_server_exceptions=False)  # a 500 is a trial's error, not ours
            with self.client:
                self.database = Database(self.settings.resolved_database_url)
                try:
                    yield self
                finally:
                    assert self.client.portal is not None
                    self.client.portal.call(self.database.close)

    def list_tools(self) -> list[dict[str, Any]]:
        answer = self._request("tools/list", {}, self._new_user())
        return list(_message(answer).get("result", {}).get("tools", []))

    def call(self, tool: str, arguments: dict[str, Any], target: str) -> Call:
        """Call ``tool`` with ``arguments`` (the prompt at ``target``) as a user of its own."""
        user = self._new_user()
        answer = self._request("tools/call", {"name": tool, "arguments": arguments}, user, name=tool)
        return self._judge(user, answer, target)

    def _new_user(self) -> str:
        self._count += 1
        return f"qa-{self._count}"

    def _request(self, method: str, params: dict[str, Any], user: str, name: str | None = None) -> httpx.Response:
        token = self.keys.token(self.settings.resource_url, user, self.scopes)
        meta = {"io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": "ringfence-qa", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}}  # no elicitation: nothing can be confirmed
        headers = {"content-type": "application/json", "accept": MCP_ACCEPT, "authorization": f"Bearer {token}",
                   "mcp-protocol-version": PROTOCOL_VERSION, "mcp-method": method}
        if name is not None:
            headers["mcp-name"] = name
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
        return self.client.post(MCP_PATH, content=json.dumps(body), headers=headers)

    def _judge(self, user: str, answer: httpx.Response, target: str) -> Call:
        records = self._records(user)
        findings = [payload for kind, _, payload in records
                    if kind == EventKind.INJECTION_FLAGGED and payload.get("where") == "arguments"]
        rules = tuple(str(rule) for payload in findings for rule in payload.get("rules", ()))
        calls = [(outcome, payload) for kind, outcome, payload in records if kind == EventKind.TOOL_CALL]
        if not calls:
            return Call(ERROR, f"HTTP {answer.status_code}, nothing recorded: {_error_text(answer)}", rules)
        outcome, payload = calls[-1]
        if outcome == "invalid":
            field, rule = str(payload.get("field")), str(payload.get("rule"))
            if not _concerns(field, target):  # a value this command made up was refused: nothing learnt
                return Call(ERROR, f"the value made up for {field} was refused ({rule})", rules)
            return Call(REFUSED, f"{field}: {rule}", rules)
        if outcome in HELD_OUTCOMES:
            return Call(HELD, f"{outcome}, {'flagged' if findings else 'not flagged'}", rules)
        if outcome in RAN:
            return Call(FLAGGED if findings else REACHED_UNFLAGGED, f"tool {outcome}", rules)
        return Call(ERROR, f"recorded as {outcome}", rules)

    def _records(self, user: str) -> list[tuple[str, str, dict[str, Any]]]:
        async def query() -> list[tuple[str, str, dict[str, Any]]]:
            log = AuditLog(self.database, self.settings.data_dir)
            return [(record.kind, record.outcome, record.payload if isinstance(record.payload, dict) else {})
                    async for record in log.query(principal=user)]

        assert self.client.portal is not None
        return self.client.portal.call(query)


def _concerns(field: str, target: str) -> bool:
    """Whether a refusal of ``field`` is a refusal of the prompt at ``target`` (or of the arguments as a whole)."""
    field, target = _dotted(field), _dotted(target)
    return field in ("arguments", target) or field.startswith(target + ".") or target.startswith(field + ".")


def _dotted(field: str) -> str:
    return field.replace("[", ".").replace("]", "")


def _message(answer: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer, sent as JSON or as an event of a stream."""
    return jsonrpc_response(answer.headers.get("content-type", ""), answer.text) or {}


def _error_text(answer: httpx.Response) -> str:
    message = _message(answer)
    error = message.get("error") or {}
    return str(error.get("message") or answer.reason_phrase or "no answer")[:200]


# The run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    tool: str
    argument: str
    prompt: Prompt
    call: Call


@dataclass
class Skipped:
    tool: str
    reason: str


@dataclass
class Report:
    app: str
    prompts: int
    trials: list[Trial]
    skipped: list[Skipped]

    def counts(self) -> dict[str, int]:
        return {outcome: sum(trial.call.outcome == outcome for trial in self.trials) for outcome in OUTCOMES}

    def reached_unflagged(self) -> list[Trial]:
        return [trial for trial in self.trials if trial.call.outcome == REACHED_UNFLAGGED]

    def errors(self) -> list[Trial]:
        return [trial for trial in self.trials if trial.call.outcome == ERROR]


def run(app: App, prompts: list[Prompt], *, include_open_world: bool = False) -> Report:
    """Every prompt through every free-text field of every tool of ``app``, one call each."""
    if not app.tools:
        raise QaInputError(f"app {app.name!r} declares no tools: there is nothing to try prompts on")
    trials: list[Trial] = []
    skipped: list[Skipped] = []
    with LocalApp(app).running() as local:
        for tool in local.list_tools():
            name = tool["name"]
            spec = app.tools.get(name)
            if spec is not None and spec.open_world and not include_open_world:
                skipped.append(Skipped(name, "open world: its calls reach other systems (--include-open-world)"))
                continue
            builder = ArgumentBuilder(tool.get("inputSchema") or {})
            fields = builder.string_fields()
            if not fields:
                skipped.append(Skipped(name, "takes no free text"))
                continue
            for path in fields:
                for prompt in prompts:
                    call = local.call(name, builder.arguments(path, prompt.text), display(path))
                    trials.append(Trial(name, display(path), prompt, call))
    return Report(app.name, len(prompts), trials, skipped)
