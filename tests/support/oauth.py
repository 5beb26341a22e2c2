"""Driving ringfence's embedded OAuth 2.1 authorization server as clients and people really do.

- :func:`start_embedded` runs ``ringfence serve`` without ``--issuer`` (the embedded server) and
  reads the one-time password of the first user from its log; :func:`add_user` is the CLI way.
- :class:`BrowserLikeUser` is the person at the browser: a cookie jar that answers the sign-in
  and consent pages over plain HTTP and returns the redirect back to the client.
- :class:`DirectClient` registers with RFC 7591 and drives ``/authorize`` and ``/token`` by hand.
- :func:`oauth_provider` builds the official SDK's ``OAuthClientProvider`` wired to a user, and
  :func:`authorized_client` opens ``Client(streamable_http_client(...))`` with it, recording the wire.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import anyio
import anyio.to_thread
import httpx
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.support.http import assert_no_internals
from tests.support.serve import CONTACTS_APP, REPO, ServeProcess, server_env

LOOPBACK_REDIRECT = "http://127.0.0.1:3030/callback"
_FIRST_USER = re.compile(r"created the first user: sign in as '([^']+)' with password '([^']+)'")
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


# Servers and accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass
class EmbeddedServer:
    """A ``ringfence serve`` (or ``ringfence auth-server``) running the embedded authorization server."""

    process: ServeProcess
    account: Account
    data_dir: Path

    @property
    def issuer(self) -> str:
        return self.process.base_url

    @property
    def mcp_url(self) -> str:
        return self.process.mcp_url

    @property
    def database_file(self) -> Path:
        return self.data_dir / "ringfence.db"

    def logs(self) -> str:
        return self.process.logs()

    def stop(self) -> None:
        self.process.stop()

    def stop_and_check(self) -> None:
        """Stop, then fail if the server ever answered 5xx or logged a traceback."""
        self.process.stop()
        errors = server_errors(self.logs())
        assert errors == [], "\n".join(errors)


def first_user(logs: str) -> Account:
    """The account the server created on first start, from the line it logs once."""
    match = _FIRST_USER.search(logs)
    assert match is not None, f"no first-user line in the log:\n{logs}"
    return Account(match.group(1), match.group(2))


def start_embedded(data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                   target: str = CONTACTS_APP, port: int | None = None) -> EmbeddedServer:
    """``ringfence serve TARGET --data-dir DATA_DIR ...`` with no ``--issuer``: the embedded server."""
    process = ServeProcess(target, *extra, "--data-dir", str(data_dir), env=env, port=port).start(data_dir)
    return EmbeddedServer(process, first_user(process.logs()), data_dir)


class AuthServerProcess(ServeProcess):
    """``ringfence auth-server --resource URL --scopes-from APP``: the authorization server alone."""

    def __init__(self, *, resource: str, scopes_from: str, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        super().__init__(scopes_from, env=env)
        self.command = [sys.executable, "-m", "ringfence", "auth-server", "--resource", resource,
                        "--scopes-from", scopes_from, "--port", str(self.port), *args]
        # ServeProcess.start polls ``metadata_url`` until it answers 200: here, RFC 8414 metadata.
        self.metadata_url = f"{self.base_url}/.well-known/oauth-authorization-server"


def start_auth_server(data_dir: Path, *, resource: str, scopes_from: str = CONTACTS_APP) -> EmbeddedServer:
    process = AuthServerProcess(resource=resource, scopes_from=scopes_from,
                                args=("--data-dir", str(data_dir))).start(data_dir)
    return EmbeddedServer(process, first_user(process.logs()), data_dir)


def ringfence_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``ringfence ARGS...`` as a subprocess, with no ``RINGFENCE_*`` variable inherited."""
    return subprocess.run([sys.executable, "-m", "ringfence", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=server_env(), timeout=60)


def audit_records(server: EmbeddedServer, *filters: str) -> list[dict[str, Any]]:
    """``ringfence audit show FILTERS...`` on the server's data folder, one record per line, parsed."""
    shown = ringfence_cli("audit", "show", *filters, "--data-dir", str(server.data_dir))
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def add_user(data_dir: Path, username: str, password: str, *extra: str) -> Account:
    """``ringfence users add NAME --password-stdin --data-dir DATA_DIR``; fails the test if refused."""
    done = ringfence_cli("users", "add", username, "--password-stdin", "--data-dir", str(data_dir), *extra,
                         stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    return Account(username, password)


# PKCE and tokens --------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """An RFC 7636 ``code_verifier`` and its ``S256`` ``code_challenge``."""
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified (for asserting what was issued)."""
    return jwt_part(token, 0)


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS, unverified (for asserting what was issued)."""
    return jwt_part(token, 1)


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect ``Location``; fails on a repeated one."""
    pairs = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    assert len({key for key, _ in pairs}) == len(pairs), f"repeated parameter in {location}"
    return dict(pairs)


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded client id and secret."""
    credentials = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


# The person at the browser ----------------------------------------------------------------------


def hidden_fields(page: str) -> dict[str, str]:
    return {html.unescape(name): html.unescape(value) for name, value in _HIDDEN.findall(page)}


def page_kind(response: httpx.Response) -> str | None:
    """``"login"`` or ``"consent"`` for an HTML page with that form, else ``None``."""
    if response.status_code not in (200, 401) or not response.headers.get("content-type", "").startswith("text/html"):
        return None
    actions = _FORM_ACTION.findall(response.text)
    if "/login" in actions:
        return "login"
    if "/authorize" in actions:
        return "consent"
    return None


class BrowserLikeUser:
    """A person who signs in and answers the consent page, with one cookie jar across authorizations.

    Every answer from the authorization server is kept in ``responses`` (tests check none is a 5xx),
    and every consent page shown in ``consent_pages``.
    """

    def __init__(self, issuer: str, account: Account, *, decision: str = "allow",
                 local_address: str | None = None) -> None:
        self.issuer = issuer
        self.account = account
        self.decision = decision
        self.responses: list[httpx.Response] = []
        self.consent_pages: list[httpx.Response] = []
        self.login_pages: list[httpx.Response] = []
        self.authorization_urls: list[str] = []
        # ``local_address`` (e.g. 127.0.0.2) makes the person come from another loopback address.
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(base_url=issuer, follow_redirects=False, timeout=10, transport=transport,
                                 event_hooks={"response": [self._keep]})
        self._last_redirect: dict[str, str] | None = None

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)

    def close(self) -> None:
        self.http.close()

    # Pages ---------------------------------------------------------------------------------

    def sign_in(self, password: str | None = None) -> httpx.Response:
        """Open ``/login`` and post the form (the answer: 303 when signed in)."""
        page = self.http.get("/login")
        return self.submit_login(page, password)

    def submit_login(self, page: httpx.Response, password: str | None = None) -> httpx.Response:
        fields = hidden_fields(page.text)
        self.login_pages.append(page)
        return self.http.post("/login", data={**fields, "username": self.account.username,
                                              "password": self.account.password if password is None else password})

    def answer_consent(self, page: httpx.Response, decision: str | None = None) -> httpx.Response:
        self.consent_pages.append(page)
        fields = hidden_fields(page.text)
        fields["decision"] = decision or self.decision
        return self.http.post("/authorize", data=fields)

    def authorize(self, url: str, *, decision: str | None = None) -> httpx.Response:
        """Follow an authorization request through sign-in and consent to the answer for the client.

        The result is the server's last response: a 302 to the client's redirect URI, or an error page.
        """
        self.authorization_urls.append(url)
        response = self.http.get(url)
        if page_kind(response) == "login":
            signed_in = self.submit_login(response)
            assert signed_in.status_code == 303, f"sign-in failed: {signed_in.status_code} {signed_in.text[:300]}"
            response = self.http.get(urljoin(self.issuer, signed_in.headers["location"]))
        if page_kind(response) == "consent":
            response = self.answer_consent(response, decision)
        return response

    def authorization_response(self, url: str, *, decision: str | None = None) -> dict[str, str]:
        """The parameters the client receives on its redirect URI (``code``, ``state``, ``iss`` or ``error``)."""
        response = self.authorize(url, decision=decision)
        assert response.status_code == 302, f"expected a redirect to the client, got {response.status_code}: " \
                                            f"{response.text[:300]}"
        return query_of(response.headers["location"])

    # The SDK's redirect and callback handlers ----------------------------------------------

    async def redirect_handler(self, url: str) -> None:
        self._last_redirect = await anyio.to_thread.run_sync(self.authorization_response, url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        answer, self._last_redirect = self._last_redirect, None
        assert answer is not None, "the callback came before any authorization"
        return AuthorizationCodeResult(code=answer.get("code"), state=answer.get("state"), iss=answer.get("iss"))


# A client driving the endpoints by hand ---------------------------------------------------------


@dataclass
class AuthorizationRequest:
    url: str
    params: dict[str, str]
    verifier: str
    state: str


@dataclass
class DirectClient:
    """A client registered through RFC 7591 (public, or confidential with a secret), speaking to
    ``/authorize`` and ``/token`` directly.

    ``**overrides`` on each request replace a parameter; ``None`` leaves it out.
    """

    issuer: str
    resource: str
    registration: dict[str, Any]
    redirect_uri: str = LOOPBACK_REDIRECT

    @property
    def client_id(self) -> str:
        return self.registration["client_id"]

    @property
    def client_secret(self) -> str | None:
        return self.registration.get("client_secret")

    @classmethod
    def register(cls, issuer: str, resource: str, *, redirect_uri: str = LOOPBACK_REDIRECT,
                 local_address: str | None = None, **metadata: Any) -> DirectClient:
        response = register(issuer, redirect_uris=[redirect_uri], local_address=local_address, **metadata)
        assert response.status_code == 201, f"registration refused: {response.status_code} {response.text}"
        return cls(issuer, resource, response.json(), redirect_uri)

    def authorization_request(self, *, scope: str | None = None, **overrides: str | None) -> AuthorizationRequest:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource,
            "scope": scope,
            **overrides,
        }
        kept = {key: value for key, value in params.items() if value is not None}
        return AuthorizationRequest(f"{self.issuer}/authorize?{urlencode(kept)}", kept, verifier, kept.get("state", ""))

    def token_request(self, form: dict[str, str | None]) -> httpx.Response:
        kept = {key: value for key, value in form.items() if value is not None}
        headers: dict[str, str] = {}
        method = self.registration.get("token_endpoint_auth_method", "none")
        if method == "client_secret_basic" and self.client_secret:
            headers = basic_auth(self.client_id, self.client_secret)
        elif method == "client_secret_post" and self.client_secret:
            kept["client_secret"] = self.client_secret
        return httpx.post(f"{self.issuer}/token", data=kept, headers=headers, timeout=10)

    def redeem(self, code: str, verifier: str, **overrides: str | None) -> httpx.Response:
        return self.token_request({
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "resource": self.resource,
            **overrides,
        })

    def refresh(self, refresh_token: str, **overrides: str | None) -> httpx.Response:
        return self.token_request({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "resource": self.resource,
            **overrides,
        })

    def code(self, user: BrowserLikeUser, *, scope: str | None = None,
             **overrides: str | None) -> tuple[str, AuthorizationRequest]:
        """A fresh authorization code (through sign-in and consent as needed) and its request."""
        request = self.authorization_request(scope=scope, **overrides)
        answer = user.authorization_response(request.url)
        assert "code" in answer, f"no code in the authorization response: {answer}"
        return answer["code"], request

    def tokens(self, user: BrowserLikeUser, *, scope: str | None = None) -> dict[str, Any]:
        """The token response of a complete, successful authorization code grant."""
        code, request = self.code(user, scope=scope)
        response = self.redeem(code, request.verifier)
        assert response.status_code == 200, f"token request refused: {response.status_code} {response.text}"
        return response.json()


def register(issuer: str, *, local_address: str | None = None, **metadata: Any) -> httpx.Response:
    """``POST /register`` (RFC 7591 §3.1) with the given client metadata.

    ``local_address`` (another loopback address, e.g. 127.0.0.2) sends it from there: registrations
    are rate-limited per address, so a module that registers many clients uses its own.
    """
    metadata.setdefault("client_name", "ringfence tests")
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    with httpx.Client(transport=transport, timeout=10) as http:
        return http.post(f"{issuer}/register", json=metadata)


# The official SDK client ------------------------------------------------------------------------


class MemoryTokenStorage:
    """The SDK's ``TokenStorage`` protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.token_history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.token_history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def oauth_provider(mcp_url: str, user: BrowserLikeUser, *, storage: MemoryTokenStorage | None = None,
                   redirect_uri: str = LOOPBACK_REDIRECT, client_metadata_url: str | None = None,
                   client_name: str = "ringfence SDK tests") -> OAuthClientProvider:
    """The SDK's provider for a public client (``token_endpoint_auth_method=none``) answered by ``user``."""
    metadata = OAuthClientMetadata(
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        client_name=client_name,
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(mcp_url, metadata, storage or MemoryTokenStorage(), user.redirect_handler,
                               user.callback_handler, client_metadata_url=client_metadata_url)


@dataclass
class Exchange:
    """One HTTP exchange the SDK made (MCP requests and its own OAuth requests alike)."""

    method: str
    url: str
    status: int
    request_body: bytes
    response_body: bytes
    www_authenticate: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.request_body.decode(), keep_blank_values=True))

    @property
    def jsonrpc_method(self) -> str | None:
        if self.path.endswith("/mcp") and self.method == "POST":
            try:
                return json.loads(self.request_body).get("method")
            except ValueError:
                return None
        return None


@dataclass
class HttpLog:
    exchanges: list[Exchange] = field(default_factory=list)

    def to(self, path: str, method: str | None = None) -> list[Exchange]:
        return [e for e in self.exchanges if e.path == path and (method is None or e.method == method)]

    def token_requests(self, grant_type: str) -> list[Exchange]:
        return [e for e in self.to("/token", "POST") if e.form.get("grant_type") == grant_type]


@asynccontextmanager
async def authorized_client(
    mcp_url: str, provider: OAuthClientProvider, *, mode: str, transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[tuple[Client, HttpLog]]:
    """``Client(streamable_http_client(url, http_client=httpx2.AsyncClient(auth=provider)), mode=mode)``."""
    log = HttpLog()

    async def record(response: httpx2.Response) -> None:
        request = response.request
        # MCP answers may be long-lived event streams: only the OAuth endpoints' bodies are read here.
        body = b"" if request.url.path.endswith("/mcp") else await response.aread()
        log.exchanges.append(Exchange(request.method, str(request.url), response.status_code,
                                      bytes(request.content), body, response.headers.get("www-authenticate")))

    async with httpx2.AsyncClient(auth=provider, timeout=20, event_hooks={"response": [record]},
                                  transport=transport) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http), mode=mode) as client:
            yield client, log


# The official client's two protocol eras: handshake sessions (2025-06-18/11-25) and stateless requests.
MODES = ("legacy", "2026-07-28")
Calls = dict[str, tuple[str, dict[str, Any]]]  # label -> (tool, arguments)


@dataclass
class Linked:
    """What one complete first link of the SDK client left behind, and its tool calls' results by label."""

    log: HttpLog
    user: BrowserLikeUser
    storage: MemoryTokenStorage
    calls: dict[str, Any]


@contextmanager
def linked_in_each_era(issuer: str, account: Account, mcp_url: str, calls: Callable[[str], Calls],
                       **provider_options: Any) -> Iterator[dict[str, Linked]]:
    """For each era: a new user links the official SDK client (sign-in, consent, token) and makes
    ``calls(mode)``; the users' browsers are closed afterwards."""

    def link(mode: str) -> Linked:
        user = BrowserLikeUser(issuer, account)
        storage = MemoryTokenStorage()

        async def run() -> Linked:
            provider = oauth_provider(mcp_url, user, storage=storage, **provider_options)
            async with authorized_client(mcp_url, provider, mode=mode) as (client, log):
                results = {label: await client.call_tool(tool, arguments)
                           for label, (tool, arguments) in calls(mode).items()}
            return Linked(log, user, storage, results)

        return anyio.run(run)

    results = {mode: link(mode) for mode in MODES}
    try:
        yield results
    finally:
        for result in results.values():
            result.user.close()


class RewriteTokenResponses(httpx2.AsyncBaseTransport):
    """A transport that passes everything through, and lets a test edit ``/token`` answers.

    ``edit(form, body)`` gets the token request's form and the answer's JSON. Used to make the SDK
    believe its access token expired (``expires_in`` rewritten), since the server has no setting
    for the access-token lifetime; the server's tokens themselves are untouched.
    """

    def __init__(self, edit: Callable[[dict[str, str], dict[str, Any]], dict[str, Any]]) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.edit = edit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "POST" or urlsplit(str(request.url)).path != "/token":
            return response
        body = await response.aread()
        if response.status_code != 200:
            return httpx2.Response(response.status_code, headers=response.headers, content=body, request=request)
        form = dict(parse_qsl(bytes(request.content).decode(), keep_blank_values=True))
        edited = json.dumps(self.edit(form, json.loads(body))).encode()
        dropped = ("content-length", "content-encoding")
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in dropped]
        return httpx2.Response(200, headers=headers, content=edited, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# Checks -----------------------------------------------------------------------------------------

# Access lines are JSON (ringfence/logs): ``"status":503``; a traceback is inside its line's ``exception``.
_SERVER_ERROR = re.compile(r'"status":5\d\d\b|" 5\d\d |Traceback|Exception in ASGI application')


def server_errors(logs: str) -> list[str]:
    """Log lines showing a 5xx answer or an unhandled exception (uvicorn access log and tracebacks)."""
    return [line for line in logs.splitlines() if _SERVER_ERROR.search(line)]


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """Assert an RFC 6749 §5.2 JSON error answer (status, ``error``, no internals); return the body."""
    assert response.status_code == status, f"expected {status} {error}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert_no_internals(response)
    return body
