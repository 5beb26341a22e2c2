"""The redactor: each type's true positives and look-alikes, replacement modes, JSON values, bounds."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.detect import TYPES, Finding, Redactor, redact_value
from ringfence.detect.checksums import IBAN_LENGTHS, iban_valid, luhn_valid
from ringfence.detect.patterns import ANCHOR_SCAN, RULES, anchors_in

REDACTOR = Redactor()


def types_found(text: str) -> list[str]:
    return [finding.type for finding in REDACTOR.find(text)]


def redacted_values(text: str) -> list[str]:
    return [text[f.start : f.end] for f in REDACTOR.find(text)]


# --- true positives and look-alikes, per type ---------------------------------------------------

POSITIVES = [
    ("EMAIL", "write to jane.doe+news@mail.example.co.uk today", "jane.doe+news@mail.example.co.uk"),
    ("EMAIL", "<a href='mailto:ops@example.com'>", "ops@example.com"),
    ("PHONE", "call +1 (415) 555-0134 now", "+1 (415) 555-0134"),
    ("PHONE", "US: (555) 123-4567.", "(555) 123-4567"),
    ("PHONE", "US: 555-123-4567", "555-123-4567"),
    ("PHONE", "US: 1-415-555-0134", "1-415-555-0134"),
    ("PHONE", "UK: +44 20 7946 0958", "+44 20 7946 0958"),
    ("PHONE", "UK: +44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
    ("PHONE", "UK: 020 7946 0958", "020 7946 0958"),
    ("PHONE", "UK mobile 07700 900123", "07700 900123"),
    ("PHONE", "DE: +49 30 12345678", "+49 30 12345678"),
    ("PHONE", "DE: 030/12345678", "030/12345678"),
    ("PHONE", "DE: 0171 1234567", "0171 1234567"),
    ("PHONE", "FR: 01 23 45 67 89", "01 23 45 67 89"),
    ("PHONE", "FR: 06.12.34.56.78", "06.12.34.56.78"),
    ("PHONE", "FR: +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("CARD", "visa 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("CARD", "mc 5555-5555-5555-4444", "5555-5555-5555-4444"),
    ("CARD", "amex 378282246310005", "378282246310005"),
    ("CARD", "amex 3782 822463 10005", "3782 822463 10005"),
    ("IBAN", "pay DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "pay GB82WEST12345698765432.", "GB82WEST12345698765432"),
    ("IBAN", "pay FR1420041010050500013M02606 now", "FR1420041010050500013M02606"),
    ("SSN", "ssn 123-45-6789", "123-45-6789"),
    ("SSN", "SSN: 123456789", "123456789"),
    ("SSN", "social security number 078 05 1120", "078 05 1120"),
    ("IP", "from 192.168.1.10:8080", "192.168.1.10"),
    ("IP", "peer 2001:db8::8a2e:370:7334 closed", "2001:db8::8a2e:370:7334"),
    ("IP", "link-local fe80::1.", "fe80::1"),
    ("IP", "mapped ::ffff:192.0.2.1", "::ffff:192.0.2.1"),
    ("JWT", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("BEARER", "Authorization: Bearer 8f3a9c1d2e4b5a6f7e8d", "8f3a9c1d2e4b5a6f7e8d"),
    ("API_KEY", "OPENAI_API_KEY=sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOp", "sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOp"),
    ("API_KEY", "key sk-Ab12Cd34Ef56Gh78Ij90KlMnOpQr", "sk-Ab12Cd34Ef56Gh78Ij90KlMnOpQr"),
    ("API_KEY", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", "ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"),
    ("API_KEY", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    ("API_KEY", "aws AKIAIOSFODNN7EXAMPLE x", "AKIAIOSFODNN7EXAMPLE"),
    ("API_KEY", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("API_KEY", "slack xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxb-1234567890-0987654321-AbCdEfGhIjKl"),
    ("API_KEY", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("API_KEY", "stripe pk_test_TYooMQauvdEDq54NiTphI7jx", "pk_test_TYooMQauvdEDq54NiTphI7jx"),
    ("API_KEY", "google AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("API_KEY", "sk-ant-api03-Ab12Cd34Ef56Gh78Ij90KlMnOpQr-AA", "sk-ant-api03-Ab12Cd34Ef56Gh78Ij90KlMnOpQr-AA"),
    ("SECRET", "login password=hunter2 ok", "hunter2"),
    ("SECRET", '{"api_key": "a8f5f167f44f4964e6c998dee827110c"}', "a8f5f167f44f4964e6c998dee827110c"),
    ("SECRET", "DB_PASSWD: 'correct horse battery staple'", "correct horse battery staple"),
    ("SECRET", "client_secret=Zx81-kq2LmN0pQ7r", "Zx81-kq2LmN0pQ7r"),
    ("SECRET", "Cookie: sid=abc123; theme=dark", "sid=abc123; theme=dark"),
    ("SECRET", "Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("URL_CREDENTIALS", "postgres://app:s3cr3t@db.internal:5432/app", "app:s3cr3t"),
    ("DOB", "DOB: 1990-01-02", "1990-01-02"),
    ("DOB", "date of birth 02/01/1990", "02/01/1990"),
    ("DOB", "she was born on 3 March 1985.", "3 March 1985"),
    ("DOB", "Geburtsdatum: 01.02.1990", "01.02.1990"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "text", "value"), POSITIVES)
def test_each_type_is_found_with_its_exact_span(type_: str, text: str, value: str) -> None:
    findings = REDACTOR.find(text)
    assert [(f.type, text[f.start : f.end]) for f in findings] == [(type_, value)]


NEGATIVES = [
    "card 4111 1111 1111 1112 fails Luhn",
    "ref 4111111111111112",
    "IBAN DE00 3704 0044 0532 0130 00 has a bad checksum",
    "GB82WEST12345698765433",
    "ssn 000-12-3456 and 666-12-3456 and 912-12-3456 and 123-00-4567 and 123-45-0000",
    "order 123456789 shipped",
    "host 999.1.1.1 and 10.0.300.1 and 01.02.03.04",
    "released as version 1.2.3.4",
    "OID 1.3.6.1.4.1.311",
    "at 2024-05-01T12:34:56.789Z took 1234 ms",
    "on 01/02/2024 at 10:30",
    "timestamp 1714567890123",
    "trace 9f86d081-884c-7d65-9a2f-eaa0c55ad015",
    "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "slice a[::2] and std::vector and 12:34:56",
    "MAC 00:1A:2B:3C:4D:5E",
    "max_tokens=100 token_count: 5 tokenizer=bert",
    "password: ******** and password=${DB_PASSWORD} and password: <redacted>",
    "the password is incorrect, please reset it",
    "sk-learn-tutorial-for-beginners is a blog post",
    "user@localhost is not an address with a domain",
    "https://user@example.com has no password",
    "released 2020-01-01, birthday party on Friday",
    "Total 1,234,567.89 EUR",
    "ISBN 978-3-16-148410-0",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_left_alone(text: str) -> None:
    # "https://user@example.com" is userinfo without a password: it reads as an e-mail address.
    expected = ["EMAIL"] if "user@example.com" in text else []
    assert types_found(text) == expected


def test_version_quad_is_kept_but_a_bare_quad_is_an_ip() -> None:
    # Decision: a dotted quad right after "version"/"v"/"build" is a version, anywhere else an address.
    assert types_found("version 1.2.3.4") == []
    assert types_found("v1.2.3.4") == []
    assert types_found("from 1.2.3.4") == ["IP"]


def test_iban_followed_by_more_digits_keeps_its_country_length() -> None:
    text = "IBAN GB82 WEST 1234 5698 7654 32 2024"
    assert redacted_values(text) == ["GB82 WEST 1234 5698 7654 32"]


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert IBAN_LENGTHS["NO"] == 15 and IBAN_LENGTHS["RU"] == 33


# --- overlaps -----------------------------------------------------------------------------------


def test_url_credentials_win_over_the_email_they_look_like() -> None:
    assert REDACTOR.redact("postgres://app:pw@db.example.com/x") == "postgres://[URL_CREDENTIALS]@db.example.com/x"


def test_a_jwt_bearer_token_is_tagged_as_a_jwt() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpMe"
    assert REDACTOR.redact(f"Authorization: Bearer {jwt}") == "Authorization: Bearer [JWT]"


def test_a_labelled_provider_key_is_tagged_as_an_api_key() -> None:
    assert REDACTOR.redact('"api_key": "sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOp"') == '"api_key": "[API_KEY]"'


def test_findings_are_sorted_and_do_not_overlap() -> None:
    text = "a@b.co 4111111111111111 postgres://u:p@h.example.com 10.0.0.1 +1 415 555 0134"
    findings = REDACTOR.find(text)
    assert findings == sorted(findings, key=lambda f: f.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


def test_a_finding_keeps_no_copy_of_the_value() -> None:
    finding = REDACTOR.find("mail a@example.com")[0]
    assert finding == Finding("EMAIL", 5, 18)
    assert not hasattr(finding, "text") and not hasattr(finding, "__dict__")
    with pytest.raises(AttributeError):
        finding.start = 0  # type: ignore[misc]


# --- private keys -------------------------------------------------------------------------------

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3\nxfn/ygWyF8PbnGy0AHB7Mi==\n"
    "-----END RSA PRIVATE KEY-----"
)


def test_a_private_key_block_is_redacted_whole() -> None:
    assert REDACTOR.redact(f"key:\n{PEM}\ndone") == "key:\n[PRIVATE_KEY]\ndone"


def test_an_unterminated_private_key_is_redacted_to_the_end_of_its_body() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEpAIBAAKCAQEA0Z3VS5JJcds3"
    assert REDACTOR.redact(text) == "[PRIVATE_KEY]"


def test_a_private_key_spanning_lines_is_redacted_in_a_stream() -> None:
    lines = ["start\n", *[line + "\n" for line in PEM.splitlines()], "after a@b.example\n"]
    assert list(REDACTOR.redact_lines(lines)) == [
        "start\n",
        "[PRIVATE_KEY]\n",
        "[PRIVATE_KEY]\n",
        "[PRIVATE_KEY]\n",
        "[PRIVATE_KEY]\n",
        "after [EMAIL]\n",
    ]


# --- replacement modes --------------------------------------------------------------------------

KEY = b"0123456789abcdef0123456789abcdef"


def test_hash_mode_is_the_keyed_hmac_of_the_normalised_value() -> None:
    redactor = Redactor(replacement="hash", hash_key=KEY)
    expected = hmac.new(KEY, b"jane@example.com", hashlib.sha256).hexdigest()[:8]
    assert redactor.redact("to Jane@Example.com") == f"to [EMAIL:{expected}]"


def test_hash_mode_joins_one_value_written_two_ways() -> None:
    redactor = Redactor(replacement="hash", hash_key=KEY)
    first, second = redactor.redact("4111 1111 1111 1111"), redactor.redact("4111-1111-1111-1111")
    assert first == second and first.startswith("[CARD:")


def test_hash_mode_differs_between_keys() -> None:
    other = Redactor(replacement="hash", hash_key=b"another key of 16+ bytes")
    assert other.redact("a@example.com") != Redactor(replacement="hash", hash_key=KEY).redact("a@example.com")


@pytest.mark.parametrize("key", [None, b"", b"too short"])
def test_hash_mode_needs_a_real_key(key: bytes | None) -> None:
    with pytest.raises(ValueError, match="hash_key"):
        Redactor(replacement="hash", hash_key=key)


def test_types_limit_what_is_found_and_unknown_types_are_refused() -> None:
    assert Redactor(types=["EMAIL"]).redact("a@example.com 10.0.0.1") == "[EMAIL] 10.0.0.1"
    with pytest.raises(ValueError, match="unknown redaction types"):
        Redactor(types=["NAME"])
    assert len(TYPES) == 13


# --- JSON-like values ---------------------------------------------------------------------------


def test_redact_value_walks_values_and_keeps_keys() -> None:
    value = {
        "user": {"email": "a@example.com", "a@example.com": "key stays", "tags": ["10.0.0.1", 7, None, True]},
        "password": "hunter2",
        "accessToken": {"nested": ["x", 1]},
        "max_tokens": 5,
        "card": 4111111111111111,
    }
    assert redact_value(value) == {
        "user": {"email": "[EMAIL]", "a@example.com": "key stays", "tags": ["[IP]", 7, None, True]},
        "password": "[SECRET]",
        "accessToken": {"nested": ["[SECRET]", "[SECRET]"]},
        "max_tokens": 5,
        "card": "[CARD]",
    }


def test_find_value_reports_json_pointers() -> None:
    found = REDACTOR.find_value({"a/b": ["x a@example.com"], "Cookie": "s=1"})
    assert found == [("/a~1b/0", Finding("EMAIL", 2, 15)), ("/Cookie", Finding("SECRET", 0, 3))]


# --- properties -------------------------------------------------------------------------------

FILLER = st.text(alphabet=string.ascii_letters + " ,;!?", max_size=30)


@st.composite
def emails(draw: st.DrawFn) -> str:
    word = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
    local = draw(st.lists(word, min_size=1, max_size=3)).copy()
    domain = draw(st.lists(st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12),
                           min_size=1, max_size=3))  # fmt: skip
    tld = draw(st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6))
    return ".".join(local) + "@" + ".".join(domain) + "." + tld


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from([("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15), ("6011", 16)]))
    body = prefix + "".join(draw(st.sampled_from(string.digits)) for _ in range(length - len(prefix) - 1))
    digits = next(body + d for d in string.digits if luhn_valid(body + d))
    sep = draw(st.sampled_from(["", " ", "-"]))
    if not sep:
        return digits
    groups = [digits[:4], digits[4:10], digits[10:]] if length == 15 else [digits[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(["DE", "FR", "GB", "NL", "ES", "IT", "BE", "CH"]))
    alphabet = string.digits if country in ("DE", "ES", "BE", "CH") else string.digits + string.ascii_uppercase
    bban = "".join(draw(st.sampled_from(alphabet)) for _ in range(IBAN_LENGTHS[country] - 4))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    compact = f"{country}{check:02d}{bban}"
    if draw(st.booleans()):
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


ssns = st.builds(
    lambda area, group, serial, sep: f"{area:03d}{sep}{group:02d}{sep}{serial:04d}",
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
    st.sampled_from(["-", " "]),
)
phones = st.builds(
    lambda template, digits: template.format(*digits),
    st.sampled_from([
        "+1 {0}{1}{2} {3}{4}{5} {6}{7}{8}{9}", "({0}{1}{2}) {3}{4}{5}-{6}{7}{8}{9}", "{0}{1}{2}-{3}{4}{5}-{6}{7}{8}{9}",
        "+44 20 {0}{1}{2}{3} {4}{5}{6}{7}", "020 {0}{1}{2}{3} {4}{5}{6}{7}", "+49 30 {0}{1}{2}{3}{4}{5}{6}{7}",
        "030 {0}{1}{2}{3}{4}{5}{6}{7}", "01 {0}{1} {2}{3} {4}{5} {6}{7}", "+33 6 {0}{1} {2}{3} {4}{5} {6}{7}",
    ]),
    st.lists(st.sampled_from("23456789"), min_size=10, max_size=10),
)  # fmt: skip
SENSITIVE = st.one_of(emails(), cards(), ibans(), ssns, phones)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=FILLER, value=SENSITIVE, suffix=FILLER)
def test_embedded_values_never_survive_redaction(prefix: str, value: str, suffix: str) -> None:
    redacted = REDACTOR.redact(f"{prefix} {value} {suffix}")
    assert value not in redacted


# Values are joined with "; ": a trunk-prefixed national number right after another number and a
# single space ("…0008 020 7946 0958") is not read as a phone number (it looks like one more group
# of an IBAN or card), so redacting the first number could reveal the second on a second pass.
@settings(max_examples=300, deadline=None, database=None)
@given(parts=st.lists(st.one_of(SENSITIVE, FILLER, st.text(max_size=20)), max_size=6))
def test_redaction_is_idempotent(parts: list[str]) -> None:
    once = REDACTOR.redact("; ".join(parts))
    assert REDACTOR.redact(once) == once


@settings(max_examples=100, deadline=None, database=None)
@given(parts=st.lists(st.one_of(SENSITIVE, FILLER), max_size=6))
def test_hash_redaction_is_idempotent(parts: list[str]) -> None:
    redactor = Redactor(replacement="hash", hash_key=KEY)
    once = redactor.redact("; ".join(parts))
    assert redactor.redact(once) == once


# --- prefilters: they save work and never a finding -----------------------------------------------


class EveryRule(Redactor):
    """Runs every rule on every text, so that what the prefilters skip can be checked against it."""

    def _applicable(self, key):  # type: ignore[no-untyped-def]
        return tuple((TYPES.index(rule.type), rule) for rule in self._rules)  # not remembered


TRIGGERS = sorted({a for rule in RULES for a in rule.anchors} | {"@", ".", ":", "://", "eyJ", "-----BEGIN ", "Bearer "})
PIECES = st.one_of(SENSITIVE, FILLER, st.sampled_from(TRIGGERS), st.text(alphabet=string.printable, max_size=20),
                   st.text(alphabet="0123456789 .-+()/:=@ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=24))  # fmt: skip


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(PIECES, max_size=5))
def test_prefilters_skip_no_finding(parts: list[str]) -> None:
    """Digit counts, capitals, literals and anchors only decide which rules are worth running."""
    text = " ".join(parts)
    assert REDACTOR.find(text) == EveryRule().find(text)
    assert REDACTOR.types_found(text) == {finding.type for finding in REDACTOR.find(text)}


@settings(max_examples=300, deadline=None, database=None)
@given(parts=st.lists(st.sampled_from(TRIGGERS) | st.text(alphabet="abcdeknoprstwy_-. é", max_size=6), max_size=8))
def test_the_anchor_trie_finds_what_the_longest_first_alternation_finds(parts: list[str]) -> None:
    anchors = sorted({a for rule in RULES for a in rule.anchors if a[0].isascii()}, key=len, reverse=True)
    alternation = re.compile("|".join(map(re.escape, anchors)))
    text = "".join(parts).lower()
    assert ANCHOR_SCAN.findall(text) == alternation.findall(text)


@settings(max_examples=300, deadline=None, database=None)
@given(parts=st.lists(st.sampled_from(TRIGGERS) | st.text(alphabet="abcdeknoprstwy_-. é", max_size=6), max_size=8))
def test_every_anchor_that_occurs_is_found_even_inside_another(parts: list[str]) -> None:
    """The scan's matches do not overlap; an anchor beginning inside another still counts."""
    text = "".join(parts).lower()
    occurring = {anchor for rule in RULES for anchor in rule.anchors if anchor in text}
    assert set(anchors_in(text)) == occurring


def test_a_secret_whose_label_runs_two_anchors_together_is_redacted() -> None:
    """"awsecret": the "aws" anchor used to hide the "secret" that begins inside it."""
    assert REDACTOR.redact("awsecret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") == "awsecret=[SECRET]"


# --- bounded time on hostile input (a safety bound, not a benchmark) ------------------------------

ADVERSARIAL = {
    "letters then @": "a" * 200_000 + "@",
    "@ then letters": "@" + "a." * 100_000,
    "spaced digits": "1 " * 100_000,
    "one long number": "1" * 200_000,
    "dotted digits": "1." * 100_000,
    "dashed digits": "12-" * 66_000,
    "plus digits": "+1 " * 66_000,
    "colons": ":" * 200_000,
    "hex colons": "a:" * 100_000,
    "pem headers without footers": "-----BEGIN RSA PRIVATE KEY-----\n" * 6_000,
    "pem header then base64": "-----BEGIN PRIVATE KEY-----\n" + "QUJD" * 50_000,
    "base64 run": "QUJD" * 50_000,
    "jwt-like run": "eyJ" + "a" * 100_000 + "." + "eyJ" + "b" * 99_000,
    "labels without values": "password=" * 22_000,
    "bearer words": "Bearer " * 28_000,
    "scheme soup": "a://" * 50_000,
    "iban-like run": "DE89" * 50_000,
    "dob labels": "DOB: " * 40_000,
}


@pytest.mark.parametrize("text", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_hostile_input_of_200_kb_is_redacted_in_bounded_time(text: str) -> None:
    started = time.perf_counter()
    REDACTOR.redact(text)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "0.0.0.0", "::1", "[::1]:8000", "::"])  # noqa: S104
def test_loopback_and_unspecified_addresses_name_no_one_and_are_kept(address: str) -> None:
    """Start-up lines like "serving at http://127.0.0.1:8000/mcp" must stay readable."""
    assert Redactor().redact(f"serving at {address} now") == f"serving at {address} now"


HEX_IDS = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32) | st.sampled_from(
    ["0" * 32, "1" * 32, "4111111111111111" + "0" * 16, "0" * 16 + "4111111111111111", "acca" * 8, "dead" * 8,
     "078051120" + "f" * 23, "4" + "1" * 31, "2001" + "0db8" * 7, "ad" * 16, "1990" + "0102" + "e" * 24]
)  # fmt: skip


@settings(max_examples=2000, deadline=None, database=None)
@given(text=HEX_IDS)
def test_no_rule_finds_anything_in_32_lower_case_hex_digits(text: str) -> None:
    """What RememberingRedactor's shortcut for request IDs and arguments hashes rests on (``_HEX_ID``): each
    rule's expression, tried at every place (its prefilters and anchors aside), finds nothing there."""
    assert Redactor().find(text) == []
    for rule in RULES:
        assert list(rule.spans(text, 0, len(text))) == [], rule.type


def test_a_remembering_redactor_neither_searches_nor_remembers_a_hex_id() -> None:
    from ringfence.detect.redactor import RememberingRedactor

    redactor = RememberingRedactor(replacement="hash", hash_key=b"k" * 32)
    request_id = "3c61810569e7f4788865cd57937b3612"
    assert redactor.redact(request_id) == request_id and request_id not in redactor._clean
    assert redactor.redact("3C61810569E7F4788865CD57937B3612") == "3C61810569E7F4788865CD57937B3612"  # searched
    assert redactor.redact("4111111111111111") != "4111111111111111"
