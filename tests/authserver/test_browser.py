"""The embedded authorization server's pages in a real browser (headless Chromium via Playwright).

A person signs in, reads the consent page, allows or denies; the browser lands on a real loopback
callback; the client redeems the code with its PKCE verifier and calls a protected tool. The consent
page refuses to be framed, and the connected-apps page revokes what was granted. Screenshots of the
pages are kept under test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.browser import LocalSite, chromium, low_contrast, screenshot
from tests.support.http import tool_result
from tests.support.serve import CONTACTS_APP, REPO, ServeProcess, served, server_env

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then fails each test, saying what to install
    expect = None
if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Response

USERNAME, PASSWORD = "alice", "correct horse battery staple"
CLIENT_NAME = "Browser Test Client"
SCOPE = "contacts:read contacts:write"
SCOPE_DESCRIPTIONS = ("See your contacts", "Add, change and delete your contacts")


# Fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The reference app with its embedded authorization server, on a fresh data dir with one user."""
    data = tmp_path_factory.mktemp("browser")
    added = subprocess.run(
        [sys.executable, "-m", "ringfence", "users", "add", USERNAME, "--password-stdin", "--data-dir", str(data)],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, env=server_env(), timeout=60,
    )
    assert added.returncode == 0, f"ringfence users add failed:\n{added.stdout}{added.stderr}"
    with served(CONTACTS_APP, "--data-dir", str(data), log_dir=data) as process:
        yield process


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 800, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# OAuth client side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    client_id: str
    redirect_uri: str
    url: str
    state: str
    verifier: str


def register_client(server: ServeProcess, redirect_uri: str) -> str:
    response = httpx.post(f"{server.base_url}/register", timeout=10, json={
        "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": CLIENT_NAME,
    })
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


def new_authorization(server: ServeProcess, site: LocalSite) -> Authorization:
    """A freshly registered public client and a PKCE S256 authorization request for it."""
    redirect_uri = f"{site.origin}/callback"
    client_id = register_client(server, redirect_uri)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPE,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256", "resource": server.mcp_url,
    })
    return Authorization(client_id, redirect_uri, f"{server.base_url}/authorize?{query}", state, verifier)


def redeem(server: ServeProcess, authorization: Authorization, code: str) -> dict:
    response = httpx.post(f"{server.base_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": authorization.redirect_uri,
        "client_id": authorization.client_id, "code_verifier": authorization.verifier, "resource": server.mcp_url,
    })
    assert response.status_code == 200, response.text
    return response.json()


def new_request_for(authorization: Authorization) -> str:
    """The same client's authorization URL with a fresh state (its PKCE challenge is reused)."""
    return authorization.url.replace(f"state={authorization.state}", f"state={secrets.token_urlsafe(16)}")


def callback_query(page: Page, site: LocalSite) -> dict[str, str]:
    """Where the browser landed: the callback page, whose query the local site recorded."""
    page.wait_for_url(f"{site.origin}/callback?*")
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    visit = site.visits_to("/callback")[-1]
    assert all(len(values) == 1 for values in visit.query.values()), visit.query
    return {name: values[0] for name, values in visit.query.items()}


# Browser side ------------------------------------------------------------------------------------


def sign_in(page: Page) -> None:
    """Fill the login form by its labels (so they must be attached to the inputs) and submit it."""
    expect(page.get_by_role("heading", name="Sign in to")).to_be_visible()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_in_directly(page: Page, server: ServeProcess) -> None:
    page.goto(f"{server.base_url}/login")
    sign_in(page)
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()


def open_consent(page: Page, authorization: Authorization) -> None:
    page.goto(authorization.url)
    if page.get_by_label("Password").count():
        sign_in(page)
    expect(page.get_by_role("heading", name=f"Allow {CLIENT_NAME} to use")).to_be_visible()


def assert_accessible(page: Page) -> None:
    low = low_contrast(page)
    assert not low, f"below WCAG AA contrast on {page.url}: {low}"
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.title()


# Tests -------------------------------------------------------------------------------------------


def test_sign_in_consent_allow_then_token_calls_a_tool(
    page: Page, server: ServeProcess, site: LocalSite
) -> None:
    authorization = new_authorization(server, site)
    page.goto(authorization.url)

    # The login page, served in place of the consent page until the person signs in.
    expect(page.get_by_role("heading", name="Sign in to")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    assert_accessible(page)
    screenshot(page, "login")
    sign_in(page)

    # The consent page: who asks, where the answer goes, and what it may do.
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"Allow {CLIENT_NAME} to use")
    expect(page.locator(".badge")).to_have_text("Unverified client")
    host = f"127.0.0.1:{site.port}"
    expect(page.locator(".host")).to_have_text(host)
    assert page.locator(".host").evaluate("e => parseFloat(getComputedStyle(e).fontSize)") > float(
        page.locator("body").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    ), "the redirect host should stand out"
    warning = page.get_by_role("note")
    expect(warning).to_contain_text("only receive the answer on this computer")
    expect(warning).to_contain_text(host)
    scopes = page.locator("ul.scopes > li")
    expect(scopes).to_have_count(2)
    for description in SCOPE_DESCRIPTIONS:
        expect(scopes.filter(has_text=description)).to_have_count(1)
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "consent")
    for _ in range(3):  # the "connected apps" link, the privacy link, then Allow
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Allow")).to_be_focused()
    assert_accessible(page)  # includes the focus ring's contrast
    screenshot(page, "consent-focus")

    page.get_by_role("button", name="Allow").click()
    answer = callback_query(page, site)
    assert set(answer) == {"code", "state", "iss"}, answer
    assert answer["state"] == authorization.state
    assert answer["iss"] == server.base_url  # RFC 9207

    token = redeem(server, authorization, answer["code"])
    assert token["token_type"].lower() == "bearer"
    assert set(token["scope"].split()) == set(SCOPE.split())
    added = tool_result(server.call_tool("add_contact", {"name": "Ada Lovelace"}, token=token["access_token"]))
    assert not added.get("isError"), added
    found = tool_result(server.call_tool("search_contacts", {"query": "ada"}, token=token["access_token"]))
    assert [contact["name"] for contact in found["structuredContent"]["result"]] == ["Ada Lovelace"], found
    # Without the token the same call is refused.
    assert server.call_tool("search_contacts", {"query": "ada"}).status_code == 401

    # The code is single-use.
    again = httpx.post(f"{server.base_url}/token", timeout=10, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": authorization.redirect_uri,
        "client_id": authorization.client_id, "code_verifier": authorization.verifier,
    })
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


def test_deny_returns_access_denied_with_issuer(page: Page, server: ServeProcess, site: LocalSite) -> None:
    authorization = new_authorization(server, site)
    open_consent(page, authorization)
    page.get_by_role("button", name="Deny").click()
    answer = callback_query(page, site)
    assert answer["error"] == "access_denied", answer
    assert answer["state"] == authorization.state
    assert answer["iss"] == server.base_url
    assert "code" not in answer


def test_consent_page_cannot_be_framed(page: Page, server: ServeProcess, site: LocalSite) -> None:
    sign_in_directly(page, server)  # so that, were framing allowed, the frame would show the consent form
    authorization = new_authorization(server, site)
    site.pages["/control"] = "<!doctype html><title>Control</title><h1>Framed fine</h1>"
    site.pages["/frame"] = (
        "<!doctype html><title>Third party</title><h1>Some other site</h1>"
        f'<iframe id="consent" title="consent" src="{authorization.url}" width="600" height="400"></iframe>'
        '<iframe id="control" title="control" src="/control" width="300" height="100"></iframe>'
    )
    framed: list[Response] = []
    page.on("response", lambda response: framed.append(response) if "/authorize?" in response.url else None)
    page.goto(f"{site.origin}/frame", wait_until="load")

    # The control frame renders, so a missing consent form is the browser refusing, not a broken page.
    expect(page.frame_locator("#control").get_by_role("heading", name="Framed fine")).to_be_visible()
    assert len(framed) == 1, [response.url for response in framed]
    headers = framed[0].headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"], headers
    assert headers["x-frame-options"] == "DENY", headers

    consent = page.frame_locator("#consent")
    expect(consent.locator("form")).to_have_count(0)
    expect(consent.get_by_role("button", name="Allow")).to_have_count(0)
    frame = page.locator("#consent").element_handle().content_frame()
    assert frame is not None
    assert not frame.url.startswith(server.base_url), f"the consent page rendered in a frame: {frame.url}"
    screenshot(page, "framed-consent-blocked")
    # The person never decided, so the client heard nothing.
    assert all(visit.query.get("state") != [authorization.state] for visit in site.visits_to("/callback"))


def test_account_lists_the_client_and_disconnecting_removes_it_with_a_notice(
    page: Page, server: ServeProcess, site: LocalSite
) -> None:
    authorization = new_authorization(server, site)
    open_consent(page, authorization)
    page.get_by_role("button", name="Allow").click()
    token = redeem(server, authorization, callback_query(page, site)["code"])

    page.goto(f"{server.base_url}/account")
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {USERNAME}")).to_be_visible()
    row = page.locator("li.app").filter(has=page.locator(f"input[name=client_id][value='{authorization.client_id}']"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(CLIENT_NAME)
    expect(row).to_contain_text(f"Sends you back to 127.0.0.1:{site.port}")
    for description in SCOPE_DESCRIPTIONS:
        expect(row).to_contain_text(description)
    expect(page.get_by_role("link", name="Delete my account and data")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "account")

    # Consent is remembered: the same request goes straight back to the client.
    page.goto(new_request_for(authorization))
    assert callback_query(page, site)["code"]

    page.goto(f"{server.base_url}/account")
    row.get_by_role("button", name=f"Disconnect {CLIENT_NAME}").click()
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"Disconnected {CLIENT_NAME}; its tokens stopped working.")
    expect(row).to_have_count(0)
    assert_accessible(page)
    screenshot(page, "account-revoked")

    # Revoking withdrew the client's refresh token and the remembered consent.
    refreshed = httpx.post(f"{server.base_url}/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": authorization.client_id, "resource": server.mcp_url,
    })
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant", refreshed.text
    page.goto(new_request_for(authorization))
    expect(page.get_by_role("heading", name=f"Allow {CLIENT_NAME} to use")).to_be_visible()


def test_pages_in_dark_mode_keep_their_contrast(browser: Browser, server: ServeProcess, site: LocalSite) -> None:
    context = browser.new_context(color_scheme="dark", viewport={"width": 800, "height": 900})
    try:
        page = context.new_page()
        authorization = new_authorization(server, site)
        page.goto(authorization.url)
        assert_accessible(page)
        screenshot(page, "login-dark")
        sign_in(page)
        expect(page.get_by_role("heading", name=f"Allow {CLIENT_NAME} to use")).to_be_visible()
        assert_accessible(page)
        screenshot(page, "consent-dark")
        for _ in range(3):  # the "connected apps" link, the privacy link, then Allow
            page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Allow")).to_be_focused()
        assert_accessible(page)  # the focus ring too
        page.get_by_role("button", name="Allow").click()
        callback_query(page, site)
        page.goto(f"{server.base_url}/account")
        assert_accessible(page)
        screenshot(page, "account-dark")
    finally:
        context.close()


def test_home_page_names_the_app_and_leads_to_sign_in(page: Page, server: ServeProcess) -> None:
    page.goto(f"{server.base_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")
    expect(page.get_by_text(server.mcp_url)).to_be_visible()
    assert_accessible(page)
    screenshot(page, "home")
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in to")).to_be_visible()
