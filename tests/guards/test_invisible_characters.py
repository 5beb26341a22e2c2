"""Argument screening refuses every character that can hide text, by Unicode property (Default_Ignorable_Code_Point,
Bidi_Control; Unicode §5.21, UAX #9), not by a hand-picked list: the ones an outside attack pass got through before
(issue #16) among them. An emoji's own variation selector or joiner (UTS #51) hides nothing and passes.
"""

from __future__ import annotations

import pytest

from tests.support.http import assert_no_internals, result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import ServeProcess

GOT_THROUGH_BEFORE = {
    "U+061C arabic letter mark (bidi control)": "\u061c",
    "U+00AD soft hyphen": "\u00ad",
    "U+180E mongolian vowel separator": "\u180e",
    "U+034F combining grapheme joiner": "\u034f",
    "U+3164 hangul filler": "\u3164",
    "U+FE0F variation selector-16 after a letter": "\ufe0f",
    "U+2065 (reserved default-ignorable)": "\u2065",
    "U+1D173 musical symbol begin beam": "\U0001d173",
}


def add_contact(contacts: ServeProcess, idp: TestIdentityProvider, name: str) -> tuple[dict, list[str]]:
    subject = new_subject()
    token = idp.token(contacts.mcp_url, sub=subject, scope="contacts:write")
    response = contacts.call_tool("add_contact", {"name": name}, token=token)
    assert_no_internals(response)
    found = tool_result(contacts.call_tool("search_contacts", {"query": ""}, token=token))
    return tool_result(response), [contact["name"] for contact in found["structuredContent"]["result"]]


@pytest.mark.parametrize("character", GOT_THROUGH_BEFORE.values(), ids=GOT_THROUGH_BEFORE.keys())
def test_default_ignorable_character_in_an_argument_is_refused_unicode_5_21(contacts, idp, character):
    result, stored = add_contact(contacts, idp, f"Ada{character}Lovelace")
    assert result["isError"] is True
    assert result_text(result) == "Invalid argument name: contains invisible or control characters that can hide text"
    assert stored == []


def test_emoji_with_their_variation_selectors_and_joiners_are_accepted_uts_51(contacts, idp):
    name = "Ada \u2764\ufe0f \U0001f469\U0001f3fd\u200d\U0001f4bb 1\ufe0f\u20e3"
    result, stored = add_contact(contacts, idp, name)
    assert result.get("isError") is not True, result
    assert stored == [name]
