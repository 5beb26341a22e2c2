"""The whole sign-in through a login provider in a real browser (headless Chromium via Playwright): an
MCP client's authorization request, "Continue with Example Corp", the provider's own sign-in and
consent pages, ringfence's consent page, the code back to the client, and a tool call with its token.
Screenshots of ringfence's sign-in page are kept under test-artifacts/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.browser import LocalSite, low_contrast, screenshot
from tests.support.http import tool_result
from tests.support.login import PROVIDER_PASSWORD, NodeOpenIdProvider
from tests.support.oauth import DirectClient, EmbeddedServer, query_of

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_a_person_links_a_client_by_signing_in_at_the_provider_in_a_real_browser(
        provider: NodeOpenIdProvider, server: EmbeddedServer, site: LocalSite, page: Page) -> None:
    from playwright.sync_api import expect

    client = DirectClient.register(server.issuer, server.mcp_url, redirect_uri=f"{site.origin}/callback",
                                   client_name="Browser Provider Client", local_address="127.0.0.5")
    request = client.authorization_request(scope="contacts:read")
    page.goto(request.url)
    continue_with = page.get_by_role("link", name="Continue with Example Corp")
    expect(continue_with).to_be_visible()
    assert low_contrast(page) == []
    screenshot(page, "sign-in-with-provider")
    continue_with.click()
    page.wait_for_url(f"{provider.issuer}/**")  # the provider's own pages from here
    page.locator("input[name=login]").fill("alice")
    page.locator("input[name=password]").fill(PROVIDER_PASSWORD)
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent for ringfence
    page.wait_for_url(f"{server.issuer}/authorize?*")
    expect(page.get_by_text("corp:alice@example.com")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{site.origin}/callback?*")
    token = client.redeem(query_of(page.url)["code"], request.verifier)
    assert token.status_code == 200, token.text
    found = tool_result(server.process.call_tool("search_contacts", {"query": "x"},
                                                 token=token.json()["access_token"]))
    assert found["isError"] is False
