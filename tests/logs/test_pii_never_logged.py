"""Properties: generated personal data and secrets, wherever a log call puts them, never reach the output,
and every line is one valid JSON object; hostile values finish and still give a valid line."""

from __future__ import annotations

import base64
import json
import logging
import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ringfence.logs.formatting import MAX_STRING
from tests.detect.test_pii import ADVERSARIAL, FILLER, cards, emails, ibans, phones
from tests.logs.support import formatter, record, strings

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"


def _b64url_json(draw: st.DrawFn) -> str:
    claims = {"sub": draw(st.text(alphabet=ALNUM, min_size=4, max_size=12)), "n": draw(st.integers(0, 10**6))}
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


@st.composite
def jwts(draw: st.DrawFn) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"at+jwt"}').decode().rstrip("=")
    signature = draw(st.text(alphabet=B64URL, min_size=20, max_size=86))
    return f"{header}.{_b64url_json(draw)}.{signature}"


@st.composite
def api_keys(draw: st.DrawFn) -> str:
    """Provider keys: random bodies with lower, upper and digits, as real ones have."""
    prefix, length, alphabet = draw(st.sampled_from([
        ("sk-proj-", 40, ALNUM), ("sk-ant-api03-", 40, ALNUM), ("ghp_", 36, ALNUM), ("glpat-", 20, ALNUM),
        ("AKIA", 16, string.ascii_uppercase + string.digits), ("sk_live_", 24, ALNUM), ("hf_", 34, ALNUM),
    ]))  # fmt: skip
    body = draw(st.text(alphabet=alphabet, min_size=length - 2, max_size=length - 2))
    return prefix + "A7" + body if alphabet != ALNUM else prefix + "a7" + body[:-1] + "Q"


bearer_tokens = st.text(alphabet=ALNUM + "-._~+/", min_size=24, max_size=64).filter(
    lambda t: sum(c.isdigit() for c in t) >= 2 and any(c.isalpha() for c in t)
).map(lambda t: "Q" + t)
# Loopback addresses name no one and are kept on purpose (127.0.0.0/8 is left out here).
ipv4s = st.tuples(st.integers(1, 254).filter(lambda first: first != 127), *[st.integers(1, 254)] * 3).map(
    lambda o: ".".join(map(str, o)))
ipv6s = st.tuples(*[st.integers(1, 0xFFFF)] * 8).map(lambda g: ":".join(f"{x:x}" for x in g))
SECRETS = st.one_of(jwts(), api_keys(), ipv4s, ipv6s)
PII = st.one_of(emails(), cards(), ibans(), phones, SECRETS)
VERSION_WORD = re.compile(r"(?i)(?:version|ver|v|release|build|rev|revision|firmware|fw)\.?[ :=]{0,2}$")
WHERE = st.sampled_from(["message", "argument", "extra", "nested extra", "exception", "bytes extra"])


def log_with(value: str, where: str, prefix: str, suffix: str) -> str:
    """The formatted line for a log call that carries ``value`` in one place."""
    text = f"{prefix} {value} {suffix}"
    if where == "message":
        made = record(text)
    elif where == "argument":
        made = record("value: %s!", text)
    elif where == "extra":
        made = record("with extra", extra={"note": text})
    elif where == "nested extra":
        made = record("with extra", extra={"call": {"arguments": [{"query": text}]}})
    elif where == "bytes extra":
        made = record("with extra", extra={"body": text.encode()})
    else:
        made = record("failed", level=logging.ERROR, exc=LookupError(text))
    return formatter().format(made)


def assert_absent(value: str, line: str) -> None:
    assert "\n" not in line
    event = json.loads(line)  # every line is one valid JSON object
    assert value not in line
    assert all(value not in s for s in strings(event)), f"{value!r} survived in {line}"


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=PII, where=WHERE, prefix=FILLER, suffix=FILLER)
def test_generated_personal_data_never_appears_wherever_it_is_logged(value: str, where: str, prefix: str,
                                                                     suffix: str) -> None:
    assume(not VERSION_WORD.search(prefix))  # the redactor's decision: "version 1.2.3.4" is not an address
    assert_absent(value, log_with(value, where, prefix, suffix))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=st.one_of(bearer_tokens, jwts()), where=WHERE)
def test_bearer_tokens_never_appear(token: str, where: str) -> None:
    assert_absent(token, log_with(token, where, "sent Authorization:", "to /mcp"))
    assert_absent(token, log_with(token, where, "header Bearer", ""))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(emails(), cards(), ibans(), phones), offset=st.integers(-40, 10), where=WHERE)
def test_a_value_cut_by_the_size_cap_leaves_no_readable_half(value: str, offset: int, where: str) -> None:
    """The cap falls inside the value: what is left of it must not be a readable prefix either."""
    filler = "w " * ((MAX_STRING + offset) // 2)
    line = log_with(value, where, filler, "tail " * 2000)
    half = value[: max(6, len(value) // 2)]
    assert_absent(half, line)


@pytest.mark.parametrize("separator", ["\n", "\t", "\r\n"])
def test_a_cut_between_digit_groups_keeps_none_of_them_whatever_separates_them(separator: str) -> None:
    """Groups of a card number split by a newline or tab are still value fragments at the cut."""
    card = separator.join(["4111", "1111", "1111", "1111"])
    filler = "x" * (MAX_STRING - 20) + " card" + separator
    line = log_with(card, "message", filler, "tail " * 10)
    assert "4111" not in line and "1111" not in line


@settings(max_examples=200, deadline=None, database=None)
@given(message=st.text(), args=st.lists(st.one_of(st.text(), st.binary(), st.integers(), st.floats()), max_size=4),
       extra=st.dictionaries(st.text(min_size=1, max_size=10), st.one_of(st.text(), st.binary(), st.none()),
                             max_size=4))
def test_any_message_arguments_and_extras_give_one_valid_json_line(message: str, args: list, extra: dict) -> None:
    extra = {f"x_{key}": value for key, value in extra.items()}  # names a LogRecord has are refused by logging
    line = formatter().format(record(message, *args, extra=extra))
    assert "\n" not in line and "\r" not in line
    event = json.loads(line)
    assert event["logger"] == "tests.logs" and isinstance(event["message"], str)


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_hostile_values_complete_and_give_a_valid_line(text: str) -> None:
    """Bounded work on hostile input (200 KB built to slow regexes) wherever it is put; no timing assertion."""
    for where in ("message", "argument", "extra", "exception", "bytes extra"):
        event = json.loads(log_with(text, where, "", ""))
        assert event["logger"] == "tests.logs"
        assert "truncated" in json.dumps(event)
