"""Secrets never leave, however they are written: letter-spaced, with soft hyphens or zero-width characters inside,
in full-width forms, wrapped in base64, or after "password" in another language. The guard scans the text with the
trick undone and replaces the span of the original text the secret was written in, and only that span.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent

from ringfence.declaration import declare_tool
from ringfence.guards import output
from ringfence.guards.output import guard_result
from tests.conftest import serve_source
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.serve import ServeProcess

API_KEY = "sk-proj-T3BlbkFJq8ZxW2mN4vR7yK1pL9sD6fG0hJ5cV3bA"
PASSWORD = "Tr0ub4dor#3x"


def wide(text: str) -> str:
    """``text`` in full-width forms (U+FF01-FF5E), as NFKC folds back."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


HIDDEN = {
    "letter-spaced": " ".join(API_KEY),
    "soft hyphens": "\u00ad".join(API_KEY[i:i + 4] for i in range(0, len(API_KEY), 4)),
    "zero-width spaces": "\u200b".join(API_KEY[i:i + 5] for i in range(0, len(API_KEY), 5)),
    "word joiners and a hangul filler": API_KEY[:10] + "\u2060\u3164" + API_KEY[10:],
    "full-width": wide(API_KEY),
    "base64": base64.b64encode(f"OPENAI_API_KEY={API_KEY}\n".encode()).decode(),
    "url-safe base64 without padding": base64.urlsafe_b64encode(f"key: {API_KEY}".encode()).decode().rstrip("="),
}
PASSWORD_LABELS = {
    "German": "Passwort", "German (Kennwort)": "Kennwort", "French": "mot de passe", "Spanish": "contraseña",
    "Portuguese": "senha", "Dutch": "wachtwoord", "Swedish": "lösenord", "Polish": "hasło", "Turkish": "şifre",
    "Russian": "пароль", "Chinese": "密码", "Japanese": "パスワード", "Korean": "비밀번호",
    "French, as a key": "mot_de_passe", "French, upper case": "MOT-DE-PASSE", "Indonesian": "kata sandi",
    "Norwegian": "passord", "Greek": "κωδικός πρόσβασης", "Arabic": "كلمة المرور",
}


def noop() -> str:
    return ""


def returns_object() -> dict[str, Any]: ...


SPEC = declare_tool(noop, effect="read", returns=["public"])
CONVERT = Tool.from_function(returns_object).fn_metadata.convert_result


def guarded_text(text: str) -> CallToolResult:
    return guard_result(SPEC, CallToolResult(content=[TextContent(type="text", text=text)]))


@pytest.mark.parametrize("written", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_hidden_api_key_is_replaced_exactly_where_it_was_written(written: str) -> None:
    result = guarded_text(f"Your key is {written} (keep it safe).")
    assert result.content[0].text == "Your key is [API_KEY] (keep it safe)."
    assert result.meta == {"ringfence/redacted": ["API_KEY"]}


@pytest.mark.parametrize("label", PASSWORD_LABELS.values(), ids=PASSWORD_LABELS.keys())
def test_a_password_after_a_label_in_another_language_is_replaced(label: str) -> None:
    result = guarded_text(f"{label}: {PASSWORD}\n")
    assert result.content[0].text == f"{label}: [SECRET]\n"
    assert result.meta == {"ringfence/redacted": ["SECRET"]}


def test_a_password_written_in_full_width_after_a_full_width_colon_is_replaced() -> None:
    result = guarded_text(f"密码\uff1a{wide(PASSWORD)}")
    assert result.content[0].text == "密码\uff1a[SECRET]"


def test_a_letter_spaced_labelled_password_loses_its_value_only() -> None:
    result = guarded_text("p a s s w o r d :   " + " ".join(PASSWORD) + "   (temporary)")
    assert result.content[0].text == "p a s s w o r d :   [SECRET]   (temporary)"


def test_a_hidden_secret_in_structured_content_is_replaced_in_both_copies() -> None:
    """The SDK sends the value twice (structuredContent and its JSON text); both copies lose the secret."""
    result = guard_result(SPEC, CONVERT({"note": f"key {HIDDEN['full-width']}", "id": 7}))
    assert result.structured_content == {"note": "key [API_KEY]", "id": 7}
    assert json.loads(result.content[0].text) == result.structured_content


BENIGN = {
    "German with soft hyphens": "Bitte das Pass\u00adwort nicht weiter\u00adgeben.",
    "emoji": "Thanks \u2764\ufe0f \U0001f469\u200d\U0001f4bb",
    "a letter-spaced heading": "S U M M A R Y\nAll systems nominal.",
    "full-width text": wide("Hello, world 2026!"),
    "a base64 PNG": "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 4).decode(),
    "a base64 sentence": base64.b64encode(b"The meeting moved to Thursday at 10.").decode(),
    "ids": "ids: 550e8400-e29b-41d4-a716-446655440000 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "a password prompt without a password": "Passwort:\nKennwort: %s\nmot de passe : ********",
}


@pytest.mark.parametrize("text", BENIGN.values(), ids=BENIGN.keys())
def test_benign_text_that_needs_unmasking_is_sent_unchanged(text: str) -> None:
    result = CallToolResult(content=[TextContent(type="text", text=text)])
    assert guard_result(SPEC, result) is result


OBFUSCATED = st.sampled_from([*HIDDEN.values(), f"Passwort: {PASSWORD}", f"密码\uff1a{PASSWORD}"])
WORDS = st.sampled_from(["note", "Ada Lovelace", "ada@example.com", " ", "\u00ad", "\u200b", "\uff58", "s k", ":"])
TEXT = st.lists(OBFUSCATED | WORDS | st.text(max_size=5), max_size=4).map(" ".join)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.sampled_from(["note", "name", "id", "Passwort"]) | TEXT, TEXT, max_size=3))
def test_the_shared_scan_agrees_with_scanning_each_copy_apart(value: dict[str, Any]) -> None:
    result = CONVERT(value)
    once = guard_result(SPEC, result)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "scan_shared", lambda *args: False)
        apart = guard_result(SPEC, result)
    assert once.model_dump(by_alias=True) == apart.model_dump(by_alias=True)
    for leaf in (once.structured_content or {}).values():
        assert API_KEY[8:20] not in leaf and PASSWORD not in leaf


# -- end to end: a real `ringfence serve` ------------------------------------------------------------

HIDING_APP = f'''
from ringfence import App

app = App("hiding")
HIDDEN = {HIDDEN!r}


@app.tool(effect="read", returns=["public"])
async def hidden_keys() -> str:
    """Returns one API key written seven ways."""
    return "\\n".join(f"{{name}}: {{written}}" for name, written in HIDDEN.items()) + "\\nPasswort: {PASSWORD}"
'''


@pytest.fixture(scope="module")
def hiding(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_source(idp, tmp_path_factory, "hiding", HIDING_APP) as server:
        yield server


def test_wire_a_key_written_seven_ways_and_a_german_password_never_leave(hiding: ServeProcess) -> None:
    response = hiding.call_tool("hidden_keys")
    result = tool_result(response)
    assert result_text(result) == "\n".join(f"{name}: [API_KEY]" for name in HIDDEN) + "\nPasswort: [SECRET]"
    assert result["_meta"]["ringfence/redacted"] == ["API_KEY", "SECRET"]
    for written in (*HIDDEN.values(), PASSWORD):
        assert json.dumps(written)[1:-1] not in response.text and written not in response.text
