"""The offer on the consent page in a real browser (headless Chromium via Playwright): the box is
labelled, ticked, readable (WCAG AA contrast), and what the person unticks is not granted.
A screenshot is kept under test-artifacts/ for a person to look at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.browser import LocalSite, low_contrast, screenshot
from tests.support.oauth import DirectClient, EmbeddedServer, query_of

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "unticked"])
def test_the_offered_scope_is_a_labelled_ticked_box_and_unticking_it_grants_the_request_only(
        embedded: EmbeddedServer, site: LocalSite, page: Page, keep: bool) -> None:
    """Asked for ``contacts:read``: the page offers write, ticked; Allow grants what the box says."""
    from playwright.sync_api import expect

    client = DirectClient.register(embedded.issuer, embedded.mcp_url, redirect_uri=f"{site.origin}/callback",
                                   client_name="Offer Browser Client", local_address="127.0.0.4")
    request = client.authorization_request(scope="contacts:read")
    page.goto(request.url)
    page.get_by_label("Username").fill(embedded.account.username)
    page.get_by_label("Password").fill(embedded.account.password)
    page.get_by_role("button", name="Sign in").click()
    offered = page.get_by_role("checkbox", name="Add, change and delete your contacts")
    expect(offered).to_be_checked()
    assert low_contrast(page) == []
    screenshot(page, f"consent-offer-{'kept' if keep else 'unticked'}")
    if not keep:
        offered.uncheck()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{site.origin}/callback?*")
    token = client.redeem(query_of(page.url)["code"], request.verifier).json()
    assert set(token["scope"].split()) == ({"contacts:read", "contacts:write"} if keep else {"contacts:read"})
