"""A client's name is shown to people on the consent and account pages: one rule for both ways a
client introduces itself (RFC 7591 registration and a client metadata document), so that a name
which displays as something else (``\\u202eelgooG\\u202c`` shows as "Google") is refused by both.
"""

from __future__ import annotations

import pytest

from ringfence.authserver.cimd import ClientMetadataError, parse_document
from tests.support import oauth
from tests.support.oauth import oauth_error

pytestmark = pytest.mark.usefixtures("no_server_errors")

# Registrations are rate-limited per address (30 an hour): this module uses its own.
ADDRESS = "127.0.0.16"
CLIENT = "https://chatgpt.com/oauth/abc123/client.json"
DISGUISED = {
    "right-to-left override": "\u202eelgooG\u202c",
    "arabic letter mark": "Goo\u061cgle",
    "right-to-left isolate": "\u2067Google\u2069",
    "zero-width space": "Goo\u200bgle",
    "soft hyphen": "Goo\u00adgle",
    "hangul filler": "Google\u3164",
    "combining grapheme joiner": "Goo\u034fgle",
    "variation selector": "Google\ufe0f",
    "mongolian vowel separator": "Goo\u180egle",
    "escape": "Google\x1b[8m",
}


@pytest.mark.parametrize("trick", sorted(DISGUISED))
def test_register_with_a_disguised_client_name_gets_400_invalid_client_metadata_rfc7591_3_2_2(embedded, trick):
    """RFC 7591 §3.2.2: a client_name with bidirectional, invisible or control characters is invalid metadata."""
    response = oauth.register(embedded.issuer, local_address=ADDRESS, redirect_uris=["http://127.0.0.1:9/cb"],
                              client_name=DISGUISED[trick])
    body = oauth_error(response, 400, "invalid_client_metadata")
    assert body["error_description"] == "client_name must not contain invisible, bidirectional or control characters."


@pytest.mark.parametrize("trick", sorted(DISGUISED))
def test_client_metadata_document_with_the_same_name_is_refused_the_same_way(trick):
    with pytest.raises(ClientMetadataError) as caught:
        parse_document(CLIENT, {"client_id": CLIENT, "client_name": DISGUISED[trick],
                                "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123"]})
    assert str(caught.value) == (
        "The client metadata document's client_name must not contain invisible, bidirectional or control characters."
    )


def test_a_name_with_emoji_and_letters_of_any_script_is_accepted(embedded):
    """UTS #51: the variation selector and joiners inside an emoji are part of it, not hidden text."""
    name = "Mail \u2709\ufe0f \U0001f469\u200d\U0001f4bb \u05d3\u05d5\u05d0\u05e8 Ma\u00efl"
    response = oauth.register(embedded.issuer, local_address=ADDRESS, redirect_uris=["http://127.0.0.1:9/cb"],
                              client_name=name)
    assert response.status_code == 201, response.text
    assert response.json()["client_name"] == name
    document = parse_document(CLIENT, {"client_id": CLIENT, "client_name": name,
                                       "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123"]})
    assert document.client_name == name
