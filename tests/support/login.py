"""Login providers for the sign-in tests, and a person who signs in at one.

:class:`NodeOpenIdProvider` is ``oidc-provider`` (npm, pinned by tests/clients/node/package-lock.json)
run by Node on loopback: an OpenID provider nobody here wrote. :class:`ProviderUser` is a person
with one cookie jar across ringfence and the provider, who follows redirects and fills the
provider's forms (its development sign-in page takes any password) the way a browser would.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from tests.clients.support import NODE_DIR, node_package
from tests.support.idp import free_port
from tests.support.oauth import AuthorizationRequest, DirectClient, EmbeddedServer, page_kind

PROVIDER_PASSWORD = "any password will do"
CORP_CALLBACK = "/login/corp/callback"  # ringfence's redirect URI for the provider the tests name "corp"


class NodeOpenIdProvider:
    """``node oidc_provider.mjs``: one confidential client, whose redirect URI is ringfence's callback."""

    __test__ = False

    def __init__(self, redirect_uri: str, *, access_token_seconds: int = 600) -> None:
        self.access_token_seconds = access_token_seconds
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = "ringfence-app"
        self.client_secret = secrets.token_urlsafe(24)
        self.redirect_uri = redirect_uri
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 20) -> NodeOpenIdProvider:
        node_package("oidc-provider", "package.json")
        self.process = subprocess.Popen(
            ["node", str(NODE_DIR / "oidc_provider.mjs"), str(self.port), self.client_id, self.client_secret,
             self.redirect_uri, str(self.access_token_seconds)],
            cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("oidc-provider did not start:\n" + "".join(self.output))
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def spec(self, secret_file: Path, *rules: str, name: str = "corp", label: str = "Example Corp") -> str:
        """The ``--login-provider`` value for this provider, its secret written to ``secret_file``."""
        secret_file.write_text(self.client_secret + "\n")
        return ",".join((f"name={name}", f"label={label}", f"issuer={self.issuer}", f"client-id={self.client_id}",
                         f"client-secret-file={secret_file}", *rules))


class _Form(HTMLParser):
    """The first form of a page that posts: its action and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None and values.get("method", "").lower() == "post":
            self.action, self._inside = values.get("action", ""), True
        elif tag == "input" and self._inside and "name" in values:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def posting_form(html: str) -> tuple[str, dict[str, str]] | None:
    form = _Form()
    form.feed(html)
    return (form.action, form.fields) if form.action is not None else None


def continue_link(page: str, provider: str = "corp") -> str:
    """The sign-in page's "Continue with …" address for ``provider``."""
    start = page.index(f'href="/login/{provider}?') + len('href="')
    return page[start:page.index('"', start)].replace("&amp;", "&")


def origin(url: str | httpx.URL) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}"


class ProviderUser:
    """A person with one browser for ringfence and the provider, signing in at the provider as ``login``."""

    def __init__(self, provider_issuer: str, login: str) -> None:
        self.provider = origin(provider_issuer)
        self.login = login
        self.http = httpx.Client(follow_redirects=False, timeout=15)
        self.provider_pages: list[httpx.Response] = []

    def close(self) -> None:
        self.http.close()

    def go(self, url: str, *, stop_at: str | None = None) -> httpx.Response:
        return self.follow(self.http.get(url), stop_at=stop_at)

    def follow(self, response: httpx.Response, *, stop_at: str | None = None) -> httpx.Response:
        """Redirects and the provider's forms (sign-in, consent), up to the first answer of ringfence that is
        not a redirect, or a redirect to ``stop_at`` (a client's redirect URI, where no one listens)."""
        for _ in range(25):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if stop_at is not None and location.startswith(stop_at):
                    return response
                response = self.http.get(location)
                continue
            form = posting_form(response.text) if origin(response.url) == self.provider else None
            if form is None:
                return response
            self.provider_pages.append(response)
            action, fields = form
            if "login" in fields:
                fields |= {"login": self.login, "password": PROVIDER_PASSWORD}
            response = self.http.post(urljoin(str(response.url), action), data=fields)
        raise AssertionError("the sign-in went round in circles")


@dataclass
class AtConsent:
    """A person who signed in at a provider on the way to a new client's authorization request, shown the
    consent page: the browser, the client, its request (``verifier`` for the code exchange) and the page."""

    user: ProviderUser
    client: DirectClient
    request: AuthorizationRequest
    page: httpx.Response


def to_consent_page(server: EmbeddedServer, provider_issuer: str, login: str, client_name: str, *,
                    scope: str = "repos:read", provider: str = "github") -> AtConsent:
    """``login`` signs in at ``provider`` on the way to a newly registered client asking for ``scope``."""
    client = DirectClient.register(server.issuer, server.mcp_url, client_name=client_name)
    request = client.authorization_request(scope=scope)
    user = ProviderUser(provider_issuer, login)
    page = user.go(urljoin(server.issuer, continue_link(user.go(request.url).text, provider)),
                   stop_at=client.redirect_uri)
    assert page_kind(page) == "consent", page.text[:500]
    return AtConsent(user, client, request, page)
