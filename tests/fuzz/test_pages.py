"""Fuzzing the pages: no 5xx, no internals, no secret echoed, signed in or not.

The home page, sign-in, consent (GET and the form's POST to /authorize), the account page with its
disconnection notice, the privacy export and account deletion, and a real pending confirmation.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.oauth_requests import OAuthStrategies
from tests.fuzz.page_requests import PageStrategies
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import BATCH, Wire, fuzz_settings


@pytest.fixture(scope="module")
def pages(target: FuzzTarget) -> PageStrategies:
    return PageStrategies(target, OAuthStrategies(target))


@given(data=st.data())
@fuzz_settings(1000)
def test_page_requests_get_no_5xx_internals_or_secrets(wire: Wire, pages: PageStrategies,
                                                       data: st.DataObject) -> None:
    """Every page and form, with the real session and CSRF token, wrong ones, or none."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("pages", data.draw(pages.requests, label="request"))
