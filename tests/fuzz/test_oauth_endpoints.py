"""Fuzzing the authorization server's endpoints: no 5xx, no internals, no secret echoed.

/authorize (signed out, or signed in as the second person), /token (every grant type, real and
made-up codes, verifiers, refresh tokens and client secrets), /register (RFC 7591 metadata and
anything else), /revoke and /introspect (the spare grant's tokens, made-up and broken ones).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.oauth_requests import OAuthStrategies, registrations
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import BATCH, Wire, fuzz_settings

REGISTRATIONS = registrations()


@pytest.fixture(scope="module")
def oauth(target: FuzzTarget) -> OAuthStrategies:
    return OAuthStrategies(target)


@given(data=st.data())
@fuzz_settings(900)
def test_authorization_requests_get_no_5xx_internals_or_secrets(wire: Wire, oauth: OAuthStrategies,
                                                                data: st.DataObject) -> None:
    """RFC 6749 §4.1.1 / RFC 7636 / RFC 8707 requests, right, wrong and odd; signed in or not."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/authorize", data.draw(oauth.authorize, label="request"))


@given(data=st.data())
@fuzz_settings(900)
def test_token_requests_get_no_5xx_internals_or_secrets(wire: Wire, oauth: OAuthStrategies,
                                                        data: st.DataObject) -> None:
    """RFC 6749 §4.1.3 / §6 token requests of every grant type, with and without client authentication."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/token", data.draw(oauth.token, label="request"))


@given(data=st.data())
@fuzz_settings(700)
def test_registrations_get_no_5xx_internals_or_secrets(wire: Wire, data: st.DataObject) -> None:
    """RFC 7591 §3.1 registrations: any metadata, any JSON, any bytes (a 429 past the per-address budget)."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/register", data.draw(REGISTRATIONS, label="request"))


@given(data=st.data())
@fuzz_settings(500)
def test_revocations_get_no_5xx_internals_or_secrets(wire: Wire, oauth: OAuthStrategies,
                                                     data: st.DataObject) -> None:
    """RFC 7009 §2.1 revocation requests."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/revoke", data.draw(oauth.revoke, label="request"))


@given(data=st.data())
@fuzz_settings(500)
def test_introspections_get_no_5xx_internals_or_secrets(wire: Wire, oauth: OAuthStrategies,
                                                        data: st.DataObject) -> None:
    """RFC 7662 §2.1 introspection requests (confidential clients only)."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/introspect", data.draw(oauth.introspect, label="request"))
