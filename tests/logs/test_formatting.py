"""The redacting formatter, in-process: one JSON object per line, every string redacted, never a raise."""

from __future__ import annotations

import contextvars
import json
import logging
import re

import pytest

from ringfence.logs.context import bind_host_identifiers, bind_request_id, unbind
from ringfence.logs.formatting import MAX_LINE, MAX_STRING, MAX_TRACEBACK
from tests.logs.support import formatter, line, parsed, record, strings

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


def test_a_line_has_utc_time_level_logger_and_message_first() -> None:
    event = parsed("started %s", "ok", level=logging.WARNING)
    assert list(event)[:4] == ["ts", "level", "logger", "message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"])
    assert (event["level"], event["logger"], event["message"]) == ("WARNING", "tests.logs", "started ok")
    assert "request_id" not in event, "outside a request there is no request id"


def test_lines_of_a_request_carry_its_request_id_and_only_while_it_runs() -> None:
    token = bind_request_id("req-42")
    try:
        assert parsed("inside")["request_id"] == "req-42"
    finally:
        unbind(token)
    assert "request_id" not in parsed("after")


def test_host_identifiers_are_logged_as_keyed_hashes_never_raw() -> None:
    # In a context of its own, as a request has: binding them also sets the audit correlation, which
    # would otherwise stay bound for the tests that follow.
    contextvars.copy_context().run(_host_identifiers_are_logged_as_keyed_hashes_never_raw)


def _host_identifiers_are_logged_as_keyed_hashes_never_raw() -> None:
    meta = {"openai/session": "sess_8f2a", "openai/subject": "v1/user-77", "openai/widgetSessionId": "ws_19",
            "openai/locale": "en-GB", "openai/userLocation": {"city": "Leeds"}, "traceparent": "00-ab-cd-01"}
    token = bind_request_id("req-1")
    try:
        bind_host_identifiers(meta)
        first, text = parsed("call"), line("call")
    finally:
        unbind(token)
    hashed = {key: value for key, value in first.items() if key.startswith("host.")}
    assert set(hashed) == {"host.openai/session", "host.openai/subject", "host.openai/widgetSessionId",
                           "host.openai/locale"}, "only openai/* strings, never other _meta keys"
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in hashed.values())
    for raw in ("sess_8f2a", "v1/user-77", "ws_19", "en-GB", "Leeds", "00-ab-cd-01"):
        assert raw not in text
    token = bind_request_id("req-2")
    try:
        bind_host_identifiers({"openai/session": "sess_8f2a"})
        assert parsed("again")["host.openai/session"] == hashed["host.openai/session"], "same value, same hash"
    finally:
        unbind(token)


def test_personal_data_in_message_arguments_and_extras_becomes_keyed_pseudonyms() -> None:
    event = parsed("user %s paid with %s", EMAIL, CARD, extra={"contact": {"emails": [EMAIL]}})
    assert EMAIL not in json.dumps(event) and CARD not in json.dumps(event)
    pseudonym = re.search(r"\[EMAIL:[0-9a-f]{8}\]", event["message"]).group(0)
    assert event["contact"] == {"emails": [pseudonym]}, "one e-mail, one pseudonym, wherever it appears"


def test_the_same_key_gives_the_same_pseudonym_and_another_key_another() -> None:
    ours = formatter().format(record("%s", EMAIL))
    again = formatter().format(record("%s", EMAIL))
    theirs = formatter(key=b"x" * 32).format(record("%s", EMAIL))
    assert json.loads(ours)["message"] == json.loads(again)["message"] != json.loads(theirs)["message"]


def test_extras_named_like_secrets_are_replaced_whole() -> None:
    event = parsed("login", extra={"password": "correct horse", "authorization": "Basic dXNlcjpwYXNz",
                                   "cookie": "sid=abc123", "headers": {"x-api-key": "plain"}})
    text = json.dumps(event)
    for secret in ("correct horse", "dXNlcjpwYXNz", "abc123", "plain"):
        assert secret not in text
    assert event["password"].startswith("[SECRET:")


def test_exception_type_message_and_traceback_are_redacted() -> None:
    event = parsed("failed", level=logging.ERROR, exc=ValueError(f"no account for {EMAIL} with token {TOKEN}"))
    exception = event["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"].startswith("no account for [EMAIL:")
    assert exception["traceback"].startswith("Traceback (most recent call last):")
    assert "ValueError: no account for [EMAIL:" in exception["traceback"]
    assert EMAIL not in json.dumps(event) and TOKEN not in json.dumps(event)


def test_access_lines_drop_the_query_string_and_are_structured() -> None:
    event = parsed('%s - "%s %s HTTP/%s" %d', "203.0.113.7:50000", "POST", f"/mcp?access_token={TOKEN}", "1.1",
                   401, name="uvicorn.access")
    assert "access_token" not in json.dumps(event) and TOKEN not in json.dumps(event)
    assert (event["method"], event["path"], event["status"]) == ("POST", "/mcp", 401)
    assert event["message"].endswith('- "POST /mcp HTTP/1.1" 401')
    assert "203.0.113.7" not in json.dumps(event), "the client address is personal data: pseudonymised"


def test_arguments_that_do_not_fit_the_message_give_a_clear_line() -> None:
    event = parsed("%s and %d", "only one")
    assert event["message"] == "%s and %d (log arguments did not fit the message: TypeError)"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError(f"cannot print {EMAIL}")

    __repr__ = __str__


def test_values_that_cannot_be_printed_give_a_valid_line_without_them() -> None:
    event = parsed("value %s", Unprintable(), extra={"thing": Unprintable(), "tags": {Unprintable()}})
    assert event["message"] == "value %s (log arguments did not fit the message: RuntimeError)"
    assert event["thing"] == "(unprintable Unprintable)"
    assert EMAIL not in json.dumps(event)


def test_binary_values_are_decoded_and_still_redacted() -> None:
    blob = b"\xff\xfe\x00" + EMAIL.encode() + b"\x80"
    event = parsed("got %s", blob, extra={"body": blob, "view": memoryview(blob)})
    assert EMAIL not in json.dumps(event)
    assert event["body"].startswith("\ufffd\ufffd\x00[EMAIL:")
    assert event["view"] == event["body"]


def test_lone_surrogates_give_valid_ascii_json() -> None:
    text = line("bad \udcff text", extra={"field": "\ud800"})
    assert text.isascii()
    event = json.loads(text)
    assert event["message"] == "bad ? text" and event["field"] == "?"


def test_huge_strings_are_cut_and_marked_and_never_leave_half_a_value() -> None:
    # The card straddles the cut: its first digit groups must not survive as an undetectable fragment.
    message = "x" * (MAX_STRING - 12) + f" {CARD} " + "y" * 50_000
    event = parsed(message, extra={"blob": message})
    for value in (event["message"], event["blob"]):
        assert value.endswith(f"...[truncated, {len(message)} in all]")
        assert len(value) < MAX_STRING + 100
        assert "4111" not in value


def test_a_string_cut_exactly_at_the_cap_is_marked_once_with_its_real_length() -> None:
    message = "x" * MAX_STRING + " and more"
    assert parsed(message)["message"] == "x" * MAX_STRING + f"...[truncated, {len(message)} in all]"


def test_huge_tracebacks_keep_their_end() -> None:
    event = parsed("failed", exc=RuntimeError("z" * 100_000 + " the cause"))
    traceback_text = event["exception"]["traceback"]
    assert traceback_text.startswith("[truncated, ") and traceback_text.endswith("the cause\n")
    assert len(traceback_text) <= MAX_TRACEBACK + 100


def test_deep_and_long_containers_are_trimmed() -> None:
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["child"] = {}
        node = node["child"]
    event = parsed("shapes", extra={"deep": deep, "long": list(range(10_000)), "wide": {str(i): i for i in range(500)}})
    assert "nested too deep" in json.dumps(event["deep"])
    assert event["long"][-1] == "(9950 more items)" and len(event["long"]) == 51
    assert event["wide"]["(truncated)"] == "450 more entries"


def test_many_huge_extras_keep_the_line_under_its_cap() -> None:
    extras = {f"field{i}": "v " * 5000 for i in range(40)}
    text = line("many", extra=extras)
    event = json.loads(text)
    assert len(text) <= MAX_LINE
    assert event["message"] == "many" and event["truncated_fields"][0] == "field0"


def test_an_extra_never_overwrites_a_fixed_field() -> None:
    event = parsed("real", extra={"request_id": "forged", "level": "DEBUG", "ts": "then"})
    assert event["level"] == "INFO" and "request_id" not in event
    assert (event["extra.request_id"], event["extra.level"], event["extra.ts"]) == ("forged", "DEBUG", "then")


def test_newlines_in_values_cannot_forge_a_second_line() -> None:
    forged = 'x\n{"level":"INFO","logger":"ringfence","message":"forged"}\r\n'
    assert len(line(forged, extra={"field": forged}).splitlines()) == 1
    assert len(formatter("text").format(record(forged)).splitlines()) == 1


def test_text_format_is_redacted_the_same_way() -> None:
    token = bind_request_id("req-9")
    try:
        text = formatter("text").format(record("mail %s", EMAIL, extra={"card": CARD}, exc=KeyError(EMAIL)))
    finally:
        unbind(token)
    first = text.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\S+Z INFO +tests\.logs \[req-9\] mail \[EMAIL:[0-9a-f]{8}\] card=\"\[CARD:",
                    first)
    assert "Traceback (most recent call last):" in text
    assert EMAIL not in text and CARD not in text


def test_a_formatter_that_fails_writes_a_fallback_line_without_the_values() -> None:
    broken = formatter()

    def explode(event: dict) -> dict:
        raise ValueError("processor bug")

    broken.processors = (explode,)
    event = json.loads(broken.format(record("secret %s", EMAIL, level=logging.ERROR)))
    assert event["message"] == "(a log line could not be written: ValueError)"
    assert (event["level"], event["logger"]) == ("ERROR", "tests.logs")
    assert EMAIL not in json.dumps(event)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json' or 'text"):
        formatter("xml")


def test_keys_of_extras_are_redacted_too() -> None:
    event = parsed("ok", extra={"by_email": {EMAIL: "value", "list": [{CARD: 1}]}})
    assert all(EMAIL not in s and CARD not in s for s in strings(event))
    assert next(iter(event["by_email"])).startswith("[EMAIL:")


def test_huge_integers_and_non_finite_floats_give_a_valid_line() -> None:
    event = parsed("numbers", extra={"big": 10**5000, "nan": float("nan"), "card": 4111111111111111})
    assert event["big"] == "(an integer of 16610 bits)" and event["nan"] == "nan"
    assert event["card"].startswith("[CARD:"), "a card number sent as a JSON number is still a card number"
