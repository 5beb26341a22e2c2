"""Widgets in a real browser, hosted the way ChatGPT hosts them, through `ringfence preview`.

A real `ringfence serve` (the reference app, and a small app whose widgets reach out) and a real
`ringfence preview` in front of each; headless Chromium drives the preview's host page. The widget
runs in a sandboxed iframe on another origin under the CSP its server declared: it renders the
tool's data in both forms, its undeclared fetches and frames are blocked (and reported), a declared
frame loads, and the confirmation card deletes exactly once, its handle not reusable.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import served_trusting
from tests.support.browser import LocalSite, chromium, screenshot
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import REPO, ServeProcess
from tests.support.tls import HttpsDocuments, make_certificates
from tests.ui.preview_process import PreviewProcess

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then fails each test, saying what to install
    expect = None
if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, FrameLocator, Page

WIDGET_APP = str(REPO / "tests" / "ui" / "widget_app.py")
DOCS_IMAGES = REPO / "docs" / "images"
FORMS = ["mcp-apps", "openai"]
APPS_HOST = {"io.modelcontextprotocol/clientCapabilities": {
    "extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}}}


# Fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    """An origin no widget declares: it must never be reached."""
    local = LocalSite().start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def frame_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsDocuments]:
    """The https site the declared-frame widget frames (a throwaway CA; the browser ignores its errors)."""
    documents = HttpsDocuments(make_certificates(tmp_path_factory.mktemp("tls")), documents={"/framed": {"ok": 1}})
    yield documents.start()
    documents.stop()


@pytest.fixture(scope="module")
def user() -> str:
    return new_subject()


@pytest.fixture(scope="module")
def contacts(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with served_trusting(idp, tmp_path_factory.mktemp("contacts")) as server:
        yield server


@pytest.fixture(scope="module")
def token(idp: TestIdentityProvider, contacts: ServeProcess, user: str) -> str:
    """The one user's token: the preview's, and the test's own direct calls (confirmations are bound to it)."""
    return idp.token(contacts.mcp_url, sub=user, scope="contacts:write")


@pytest.fixture(scope="module")
def preview(contacts: ServeProcess, token: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreviewProcess]:
    process = PreviewProcess(contacts.mcp_url, token).start(tmp_path_factory.mktemp("preview"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def probes(idp: TestIdentityProvider, site: LocalSite, frame_site: HttpsDocuments,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    env = {"WIDGET_TEST_SITE_PORT": str(site.port), "WIDGET_TEST_FRAME_PORT": str(frame_site.port)}
    with served_trusting(idp, tmp_path_factory.mktemp("probes"), target=WIDGET_APP, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def probes_preview(idp: TestIdentityProvider, probes: ServeProcess,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreviewProcess]:
    token = idp.token(probes.mcp_url, sub=new_subject())
    process = PreviewProcess(probes.mcp_url, token).start(tmp_path_factory.mktemp("probes-preview"))
    yield process
    process.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 900, "height": 1000}, ignore_https_errors=True)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# Helpers -----------------------------------------------------------------------------------------


def open_host(page: Page, preview: PreviewProcess, form: str = "mcp-apps") -> None:
    page.goto(f"{preview.url}?form={form}")
    page.wait_for_selector("body[data-ready=true]")


def call_from_host(page: Page, tool: str, arguments: dict[str, Any] | None = None) -> FrameLocator:
    """Call ``tool`` from the host page; the widget it shows."""
    page.select_option("#tool", tool)
    page.fill("#arguments", json.dumps(arguments or {}))
    page.click("#call")
    page.wait_for_selector("#widget")
    return page.frame_locator("#widget")


def add_contact(server: ServeProcess, token: str, name: str) -> int:
    result = tool_result(server.call_tool("add_contact", {"name": name, "email": "x@example.com"}, token=token))
    content = result["structuredContent"]
    return content.get("result", content)["id"]


def names_found(server: ServeProcess, token: str, query: str) -> list[str]:
    result = tool_result(server.call_tool("search_contacts", {"query": query}, token=token))
    return [contact["name"] for contact in result["structuredContent"]["result"]]


def keep_screenshot(page: Page, name: str, doc_name: str) -> None:
    """A screenshot under test-artifacts/; with RINGFENCE_UPDATE_SCREENSHOTS=1 also the README's copy in
    docs/images/ (a normal run leaves the repository as it was)."""
    taken = screenshot(page, name)
    if os.environ.get("RINGFENCE_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(taken, DOCS_IMAGES / doc_name)


def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll a condition outside the browser (a server's record) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def violations_of(preview: PreviewProcess, directive: str, origin: str) -> list[dict[str, Any]]:
    return [violation for violation in preview.violations()
            if violation["directive"] == directive and violation["blocked"].startswith(origin)]


# The contact list --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_the_contact_list_renders_the_tools_data(form: str, page: Page, preview: PreviewProcess,
                                                  contacts: ServeProcess, token: str) -> None:
    tag = secrets.token_hex(3)
    names = [f"Ada {tag} Lovelace", f"Grace {tag} Hopper"]
    for name in names:
        add_contact(contacts, token, name)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type} {message.location.get('url')} {message.text}"))
    open_host(page, preview, form)

    widget = call_from_host(page, "search_contacts", {"query": tag})

    expect(widget.locator("li .name")).to_have_text(sorted(names))
    expect(widget.locator("#query")).to_have_value(tag)  # the tool's input reached it too
    if form == "mcp-apps":
        keep_screenshot(page, "preview-contact-list", "widget-contact-list.png")
    # the widget's own search goes through the host to the server
    widget.locator("#query").fill(f"Grace {tag}")
    widget.locator("button[type=submit]").click()
    expect(widget.locator("li .name")).to_have_text([f"Grace {tag} Hopper"])
    expect(page.locator("#log li[data-kind=call]").filter(has_text="widget → host tools/call search_contacts")
           ).to_have_count(1)
    assert [line for line in console if line.startswith("error")] == []  # nothing the host's own CSP refused


@pytest.mark.parametrize("form", FORMS)
def test_a_widget_cannot_call_a_tool_hidden_from_the_app(form: str, page: Page, preview: PreviewProcess,
                                                         contacts: ServeProcess, token: str) -> None:
    tag = secrets.token_hex(3)
    open_host(page, preview, form)
    widget = call_from_host(page, "search_contacts", {"query": tag})
    expect(widget.locator("#empty")).to_be_visible()
    frame = page.locator("#widget").element_handle().content_frame()

    outcome = frame.evaluate("(name) => window.ringfence.callTool('add_contact', {name: name})"
                             ".then(function () { return 'ran'; }, function (error) { return error.message; })",
                             f"Mallory {tag}")

    assert "does not let widgets call 'add_contact'" in outcome
    expect(page.locator("#log li[data-kind=refused]")).to_contain_text("add_contact")
    assert names_found(contacts, token, tag) == []


# The declared CSP, enforced ----------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_an_undeclared_fetch_is_blocked_and_reported(form: str, page: Page, probes_preview: PreviewProcess,
                                                     site: LocalSite) -> None:
    open_host(page, probes_preview, form)
    before = len(violations_of(probes_preview, "connect-src", site.origin))

    widget = call_from_host(page, "probe")

    expect(widget.locator("#state")).to_have_text("blocked")
    expect(page.locator("#log li[data-kind=violation]").filter(has_text="connect-src")).not_to_have_count(0)
    assert len(violations_of(probes_preview, "connect-src", site.origin)) > before
    assert site.visits_to("/probe") == []


def test_an_undeclared_frame_is_blocked_and_reported(page: Page, probes_preview: PreviewProcess,
                                                     site: LocalSite) -> None:
    open_host(page, probes_preview)
    before = len(violations_of(probes_preview, "frame-src", site.origin))

    call_from_host(page, "frame_undeclared")

    expect(page.locator("#log li[data-kind=violation]").filter(has_text="frame-src")).not_to_have_count(0)
    assert len(violations_of(probes_preview, "frame-src", site.origin)) > before
    assert site.visits_to("/framed") == []


@pytest.mark.parametrize("form", FORMS)
def test_a_declared_frame_loads(form: str, page: Page, probes_preview: PreviewProcess,
                                frame_site: HttpsDocuments) -> None:
    open_host(page, probes_preview, form)

    widget = call_from_host(page, "frame_declared")

    expect(widget.frame_locator("iframe").locator("body")).to_contain_text("ok")
    eventually(lambda: "/framed" in frame_site.fetches, "the declared https site to be fetched")
    assert not violations_of(probes_preview, "frame-src", f"https://localhost:{frame_site.port}")


# The confirmation card ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_the_confirmation_card_deletes_once_and_its_handle_is_spent(form: str, page: Page, preview: PreviewProcess,
                                                                   contacts: ServeProcess, token: str) -> None:
    tag = secrets.token_hex(3)
    doomed, kept = f"Doomed {tag}", f"Kept {tag}"
    doomed_id = add_contact(contacts, token, doomed)
    add_contact(contacts, token, kept)
    open_host(page, preview, form)

    card = call_from_host(page, "delete_contact", {"contact_id": doomed_id})

    expect(card.locator("#preview")).to_contain_text(doomed)
    expect(card.locator("#confirm")).to_be_enabled()
    if form == "mcp-apps":
        keep_screenshot(page, "preview-confirmation-card", "confirmation-card.png")
    pending = json.loads(page.locator("#result").text_content())
    assert pending["isError"] is True
    handle = pending["_meta"]["ringfence/confirmation"]["handle"]
    assert names_found(contacts, token, tag) == sorted([doomed, kept])  # nothing done before Confirm

    card.locator("#confirm").click()

    expect(card.locator("#status")).to_contain_text(f"Deleted contact {doomed_id}")
    expect(card.locator("#confirm")).to_be_disabled()
    card.locator("#confirm").dispatch_event("click")  # a second click: nothing
    frame = page.locator("#widget").element_handle().content_frame()
    # messages from one window arrive in order: once this call is answered, the host saw any earlier one
    frame.evaluate("() => window.ringfence.callTool('search_contacts', {query: 'x'})")
    deletions = page.locator("#log li[data-kind=call]").filter(has_text="widget → host tools/call delete_contact")
    expect(deletions).to_have_count(1)
    assert names_found(contacts, token, tag) == [kept]

    replayed = tool_result(contacts.call_tool("delete_contact", {"contact_id": doomed_id, "confirmation": handle},
                                              token=token, meta=APPS_HOST))
    assert replayed["isError"] is True
    assert "not valid" in result_text(replayed)

    retried = tool_result(contacts.call_tool("delete_contact", {"contact_id": doomed_id}, token=token, meta=APPS_HOST))
    assert retried["isError"] is True
    assert retried["_meta"]["ringfence/confirmation"]["handle"] != handle  # it asks again
    assert names_found(contacts, token, tag) == [kept]


# The preview itself: its API answers the host page alone; the widget gets the declared policy -------


def test_the_preview_api_answers_only_its_host_page(preview: PreviewProcess, contacts: ServeProcess) -> None:
    host_origin = preview.url.rstrip("/")
    call = {"name": "app_info", "arguments": {}, "form": "mcp-apps"}

    assert httpx.post(f"{preview.url}api/call", json=call, headers={"origin": host_origin}).status_code == 200
    assert httpx.post(f"{preview.url}api/call", json=call).status_code == 403  # no Origin
    assert httpx.post(f"{preview.url}api/call", json=call,
                      headers={"origin": preview.widget_origin}).status_code == 403  # the widget's own origin
    assert httpx.get(f"{preview.url}api/tools", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert httpx.get(preview.url, headers={"host": "preview.example"}).status_code == 421  # DNS rebinding
    assert httpx.get(f"{preview.widget_origin}/widget?form=mcp-apps&uri=ui://nope/x.html").status_code == 404
    widget_call = {**call, "name": "add_contact", "arguments": {"name": "Mallory"}, "byWidget": True}
    refused = httpx.post(f"{preview.url}api/call", json=widget_call, headers={"origin": host_origin})
    assert refused.status_code == 403


@pytest.mark.parametrize("form", FORMS)
def test_the_widget_is_served_under_the_declared_policy(form: str, preview: PreviewProcess) -> None:
    tools = httpx.get(f"{preview.url}api/tools").json()["tools"]
    meta = next(tool for tool in tools if tool["name"] == "search_contacts")["_meta"]
    uri = meta["openai/outputTemplate"] if form == "openai" else meta["ui"]["resourceUri"]

    response = httpx.get(f"{preview.widget_origin}/widget", params={"form": form, "uri": uri})

    assert response.status_code == 200
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "font-src data:; media-src data:; connect-src 'none'; frame-src 'none'; base-uri 'none'; "
        f"form-action 'none'; report-uri {preview.url}api/csp-report")
    head = response.text[response.text.index("<head>"):]
    first_script = head[head.index("<script"):head.index("</script>")]
    assert ("window.openai = openai" in first_script) == (form == "openai")  # the shim before any other script
