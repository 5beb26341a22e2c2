"""What the redactor looks for: one rule per kind of personal data or secret, most specific first.

Each rule is a regular expression that finds candidates plus, where a format has one, a Python
check that accepts them (Luhn, mod-97, SSA ranges, ``ipaddress``). Written here rather than taken
from Presidio or a secrets scanner because speed is the point: the redactor sits on every log line.

Every expression is linear-time: repetition counts are bounded, digit groups that could be split
several ways are possessive (``\\d{1,5}+``) and candidates are anchored by look-behinds so that a
long run of one character is examined from one start only. For speed, each expression starts with
a literal or a character class (the regex engine then skips ahead in C), with the look-behind that
checks the preceding character placed after that first character; label-led rules (passwords,
dates of birth, ...) are only tried where their label occurs in the lower-cased text.

The output guard scans the keys and strings of a JSON value one by one in place of its JSON text
(``scan_shared`` in ``ringfence/guards/output.py``). That holds because no expression here takes in
a double quote or reads one differently from the end of the text, except the label-led rules, which
are anchored (their anchors send the guard the slow way). A new rule must keep it so; the property
tests in ``tests/guards/test_output_guards.py`` compare the two ways.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ringfence.detect.checksums import IBAN_LENGTHS, iban_valid, luhn_valid, ssn_valid

# The replacement tags, in priority order: when two findings overlap, the earlier type wins.
TYPES: tuple[str, ...] = (
    "PRIVATE_KEY",
    "URL_CREDENTIALS",
    "JWT",
    "API_KEY",
    "BEARER",
    "SECRET",
    "EMAIL",
    "IBAN",
    "CARD",
    "SSN",
    "DOB",
    "IP",
    "PHONE",
)

Validator = Callable[[re.Match[str], str], bool]


@dataclass(frozen=True)
class Rule:
    """A candidate expression, the group that is redacted, and the check that accepts a candidate.

    ``literals`` (any of, case-sensitive) and ``folded_literals`` (any of, in the lower-cased text)
    are cheap prefilters: the expression runs only on text that contains one of them. So are
    ``min_digits`` (no finding of the rule holds fewer digits, ``\\d``) and ``needs_upper`` (every
    finding holds an ASCII capital). With ``anchors``, the expression is only tried (``match``) where
    an anchor occurs in the lower-cased text, so it must start with the anchor.
    """

    type: str
    regex: re.Pattern[str]
    group: str | int = 0
    validate: Validator | None = None
    literals: tuple[str, ...] = ()
    folded_literals: tuple[str, ...] = ()
    min_digits: int = 0
    needs_upper: bool = False
    windowed: bool = True  # False: the rule scans the whole text itself, in linear time
    anchors: tuple[str, ...] = ()

    def candidates(self, text: str, start: int, end: int, lowered: str | None) -> Iterator[re.Match[str]]:
        if not self.anchors or lowered is None:
            return self._searched(text, start, end)
        return self._anchored(text, start, end, lowered)

    def _anchored(self, text: str, start: int, end: int, lowered: str) -> Iterator[re.Match[str]]:
        positions = sorted({pos for anchor in self.anchors for pos in _occurrences(lowered, anchor, start, end)})
        reached = start
        for pos in positions:
            if pos < reached:
                continue
            match = self.regex.match(text, pos, end)
            if match is not None:
                yield match
                reached = match.end()

    def _searched(self, text: str, start: int, end: int) -> Iterator[re.Match[str]]:
        search = self.regex.search
        pos = start
        while pos < end:
            match = search(text, pos, end)
            if match is None:
                return
            yield match
            # A rejected candidate may hide a valid one that starts inside it; the caller's check
            # decides, so the next search starts one character further.
            pos = match.start() + 1

    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        reached = start
        for match in self.candidates(text, start, end, lowered):
            if match.start() < reached:
                continue
            if self.validate is None or self.validate(match, text):
                span_start, span_end = match.span(self.group)
                if span_end > span_start:
                    yield span_start, span_end
                reached = match.end()


def _occurrences(haystack: str, needle: str, start: int, end: int) -> Iterator[int]:
    pos = haystack.find(needle, start, end)
    while pos != -1:
        yield pos
        pos = haystack.find(needle, pos + 1, end)


def _digits(value: str) -> str:
    return "".join(filter(str.isdigit, value))


# --- e-mail (RFC 5321 §4.5.3.1: local part at most 64 octets; labels at most 63) ---------------
_EMAIL_DOMAIN = re.compile(r"@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,65}$")


class _EmailRule(Rule):
    """Found from each "@": the domain forwards with a regex, the local part backwards."""

    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        at = text.find("@", start, end)
        while at != -1:
            domain = _EMAIL_DOMAIN.match(text, at, end)
            local = _EMAIL_LOCAL.search(text, max(0, at - 65), at) if domain else None
            if domain and local and _email_ok(local.group(), domain.group()):
                yield local.start(), domain.end()
            at = text.find("@", at + 1, end)


def _email_ok(local_part: str, host: str) -> bool:
    """A local part of at most 64 characters without leading, trailing or doubled dots, and a host
    ("@" then labels) none of whose labels starts or ends with "-" (the last is letters only)."""
    if len(local_part) > 64 or local_part.startswith(".") or local_part.endswith(".") or ".." in local_part:
        return False
    return not (host.startswith("@-") or ".-" in host or "-." in host)


# --- phone numbers ---------------------------------------------------------------------------
_PHONE = re.compile(
    r"""
    [+(\d](?<![\w+/.-].)                              # not glued to a word, path or version
    (?:
        (?<=\+)[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}+){1,6}     # E.164 with separators
      | (?<=\()[2-9]\d{2}\)[ ]?\d{3}[ .-]\d{4}                               # US (555) 123-4567
      | (?<=1)[ .-]?\([2-9]\d{2}\)[ ]?\d{3}[ .-]\d{4}                        # US 1 (555) 123-4567
      | (?<=1)[ .-][2-9]\d{2}(?P<nanp1>[ .-])\d{3}(?P=nanp1)\d{4}              # US 1-555-123-4567
      | (?<=[2-9])\d{2}(?P<nanp>[ .-])\d{3}(?P=nanp)\d{4}                      # US 555-123-4567
      | (?<=\()0\d{1,4}\)[ ]?\d{2,8}+(?:[ -]\d{2,8}+){0,3}                     # (030) 1234567
      # trunk-prefixed national numbers, not when they continue a run of digit groups (IBAN, card)
      | (?<=0)(?<!\d[ ]0)[1-9](?P<fr>[ .])\d{2}(?P=fr)\d{2}(?P=fr)\d{2}(?P=fr)\d{2}  # FR 01 23 45 67 89
      | (?<=0)(?<!\d[ ]0)\d{1,4}+(?:[ /-]\d{2,8}+){1,3}                           # UK 020 7946 0958, DE
    )
    (?![\w/@]|[.:-]\d)
    """,
    re.VERBOSE,
)
_DATE_SHAPE = re.compile(r"\+?\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d|[/.-]\d)")


class _PhoneRule(Rule):
    """An international number that runs into a following number is cut back to 15 digits."""

    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        search = self.regex.search
        pos = start
        while pos < end:
            match = search(text, pos, end)
            if match is None:
                return
            span_end = match.end()
            value = match.group()
            digits = len(_digits(value))
            if value.startswith("+") and digits > 15 and not _DATE_SHAPE.match(value):
                span_end = match.start() + _e164_prefix(value)
                value = text[match.start() : span_end]
                digits = len(_digits(value))
            if _phone_ok_value(value, digits):
                yield match.start(), span_end
                pos = span_end  # a match starting inside this number would not be kept: search on after it
            else:
                pos = match.start() + 1  # a rejected candidate may hide a valid one that starts inside it


def _e164_prefix(value: str) -> int:
    """Length of the longest prefix of ``value`` that ends a digit group and has at most 15 digits."""
    best, digits = 0, 0
    for index, char in enumerate(value):
        if char.isdigit():
            digits += 1
            if digits > 15:
                break
            if index + 1 == len(value) or not value[index + 1].isdigit():
                best = index + 1
    return best


def _phone_ok_value(value: str, digits: int) -> bool:
    if _DATE_SHAPE.match(value):
        return False
    if value.startswith("+"):
        return 8 <= digits <= 15  # ITU-T E.164: at most 15 digits
    if value.startswith(("0", "(0")):
        return 9 <= digits <= 13
    return True


# --- payment cards (ISO/IEC 7812: 13 to 19 digits, Luhn) --------------------------------------
_CARD = re.compile(
    r"""
    [2-6](?<![\w.,+-].)
    (?:
        \d{12,18}
      | \d{3}(?P<c4>[ -])\d{4}(?P=c4)\d{4}(?P=c4)\d{4}(?:(?P=c4)\d{3})?     # 4-4-4-4(-3)
      | (?<=3)\d{3}(?P<c6>[ -])\d{6}(?P=c6)\d{4,5}                         # Amex 4-6-5, Diners 4-6-4
    )
    (?!\w|[.,-]\d)
    """,
    re.VERBOSE,
)


def _card_ok(match: re.Match[str], text: str) -> bool:
    return luhn_valid(_digits(match.group()))


# --- IBAN (ISO 13616; printed in groups of four) ----------------------------------------------
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")


def _index_after(value: str, characters: int) -> int:
    """The index just after the ``characters``-th non-space character of ``value``."""
    seen = 0
    for index, char in enumerate(value):
        if char != " ":
            seen += 1
            if seen == characters:
                return index + 1
    return len(value)


class _IbanRule(Rule):
    """IBAN candidates may run into a following group of digits; the country's length decides."""

    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        pos = start
        while pos < end:
            match = self.regex.search(text, pos, end)
            if match is None:
                return
            value = match.group()
            compact = value.replace(" ", "")
            expected = IBAN_LENGTHS.get(compact[:2])
            if expected is not None and len(compact) >= expected and iban_valid(compact[:expected]):
                stop = match.start() + _index_after(value, expected)
                if stop == match.end() or text[stop] == " ":
                    yield match.start(), stop
                    pos = stop
                    continue
            pos = match.start() + 1


# --- US SSN (SSA: area 001-899 except 666, group 01-99, serial 0001-9999) --------------------
_SSN = re.compile(r"\d(?<![\w.-]\d)\d{2}(?P<sep>[- ])\d{2}(?P=sep)\d{4}(?!\w|[.-]\d)")
_SSN_LABELLED = re.compile(
    r"(?i:ssn|social[ ]security(?:[ ]n(?:o|umber))?)\.?[ \t]{0,3}[:#=-]?[ \t]{0,3}(?P<v>\d{9})(?!\d)"
)


def _ssn_ok(match: re.Match[str], text: str) -> bool:
    digits = _digits(match.group())
    return ssn_valid(digits[:3], digits[3:5], digits[5:])


def _ssn_labelled_ok(match: re.Match[str], text: str) -> bool:
    if match.start() and text[match.start() - 1].isalpha():
        return False
    digits = match.group("v")
    return ssn_valid(digits[:3], digits[3:5], digits[5:])


# --- IP addresses -----------------------------------------------------------------------------
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")
_VERSION_WORD = re.compile(r"(?i)(?:version|ver|v|release|build|rev|revision|firmware|fw)\.?[ :=]{0,2}$")


def _ipv4_ok(match: re.Match[str], text: str) -> bool:
    octets = match.group().split(".")
    if any((len(octet) > 1 and octet[0] == "0") or int(octet) > 255 for octet in octets):
        return False  # RFC 6943 §3.1.1: no leading zeros (they read as octal in some parsers)
    if octets[0] == "127" or match.group() == "0.0.0.0":  # noqa: S104 - loopback and "any" name no one
        return False
    # A dotted quad right after "version" is a version number (decision: not redacted).
    return not _VERSION_WORD.search(text, max(0, match.start() - 12), match.start())


# RFC 4291 §2.2 text forms. An address ends in a hex digit, a dotted quad or "::" (never in a lone ":"
# or ":::"), and may be followed by a colon, as log lines write it ("for 2001:db8::7: upstream timeout",
# "for fe80:1::: timeout"), but not by a colon and more of the address.
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.].)(?=[0-9A-Fa-f]{0,3}:)[0-9A-Fa-f:]{1,38}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?<![^:]:)(?<!:::)(?![\w%]|:[\w:]|\.\d)"
)


def _ipv6_ok(match: re.Match[str], text: str) -> bool:
    value = match.group()
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if value.count(":") < 2:
        return False
    if ipaddress.IPv6Address(value).is_loopback or ipaddress.IPv6Address(value).is_unspecified:
        return False  # ::1 and :: name no one
    groups = [group for group in re.split(r"[:.]", value) if group]
    # "::1", "::2" (a slice) and "a::b" (a path) are valid addresses but rarely personal data.
    return len(groups) >= 2 and sum(len(group) for group in groups) >= 4


# --- tokens and keys --------------------------------------------------------------------------
# RFC 7519 JWS compact serialisation: base64url(header) "." base64url(payload) "." signature.
_JWT = re.compile(r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{5,8000}+\.[A-Za-z0-9_-]{5,8000}+\.[A-Za-z0-9_-]{0,8000}+(?![\w-])")
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER = re.compile(r"(?i:bearer)(?<![\w-].{6})[ \t]{1,5}(?P<v>[A-Za-z0-9._~+/-]{8,4096}+=*)")
_API_KEY = re.compile(
    r"""
    (?:
        sk-ant-[A-Za-z0-9_-]{20,250}+                               # Anthropic
      | sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,250}+          # OpenAI
      | gh[pousr]_[A-Za-z0-9]{36,251}+                              # GitHub
      | github_pat_[A-Za-z0-9_]{22,251}+
      | (?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}                         # AWS access key id
      | xox[abposr]-[A-Za-z0-9-]{10,250}+                           # Slack
      | xapp-\d-[A-Za-z0-9-]{10,250}+
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,247}+             # Stripe
      | whsec_[A-Za-z0-9+/=]{20,100}+
      | AIza[0-9A-Za-z_-]{35}                                       # Google
      | glpat-[A-Za-z0-9_-]{20,100}+                                # GitLab
      | npm_[A-Za-z0-9]{36}                                         # npm
      | hf_[A-Za-z0-9]{30,40}+                                      # Hugging Face
      | pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,250}+                  # PyPI
      | SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}                    # SendGrid
    )
    (?![A-Za-z0-9_-])
    """,
    re.VERBOSE,
)
_KEY_PREFIX = re.compile(r"^(?:sk-(?:ant-|proj-|svcacct-|admin-)?|gh[pousr]_|github_pat_|[a-z]+[_-](?:live_|test_)?)")


def _api_key_ok(match: re.Match[str], text: str) -> bool:
    start = match.start()
    if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        return False  # glued to a longer word
    body = _KEY_PREFIX.sub("", match.group())
    classes = any(c.islower() for c in body) + any(c.isupper() for c in body) + any(c.isdigit() for c in body)
    return classes >= 2  # real keys are random; "sk-learn-tutorial-for-beginners" is not


_AWS_SECRET = re.compile(
    r"(?i:aws_?secret_?access_?key|aws_?secret(?:_?key)?|secret_?access_?key)[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
    r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
)

# --- labelled secrets -------------------------------------------------------------------------
# "Password" in other languages: a password after one of these is redacted too. Written lower-case, one
# space between words ("mot de passe"; in a label, also "mot_de_passe", "mot-de-passe" or "motdepasse").
PASSWORD_WORDS: tuple[str, ...] = (
    "passwort", "kennwort", "mot de passe", "contraseña", "contrasenya", "senha", "wachtwoord", "lösenord",
    "adgangskode", "passord", "salasana", "hasło", "heslo", "jelszó", "şifre", "parolă", "geslo", "lozinka",
    "slaptažodis", "пароль", "лозинка", "κωδικός πρόσβασης", "סיסמה", "كلمة المرور", "पासवर्ड", "รหัสผ่าน", "密码", "密碼",
    "パスワード", "비밀번호", "mật khẩu", "kata sandi",
)
_PASSWORD_WORDS = "|".join(re.escape(word).replace(r"\ ", "[ _-]?") for word in PASSWORD_WORDS)
_LOGIN_LABELS = r"passw(?:or)?d|passwd|pwd|passphrase|(?<![a-z])pass|" + _PASSWORD_WORDS
_SECRET = re.compile(
    r"(?i)(?P<label>" + _LOGIN_LABELS + r"|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
    r"|secret[_-]?key|signing[_-]?key|encryption[_-]?key|client[_-]?secret|credentials?|auth[_-]?key"
    r"|session[_-]?(?:id|key|token))"
    r"[\"']?[ \t]{0,3}(?::=|=>|[:=\uff1a\uff1d])[ \t]{0,3}"  # CJK text writes the full-width colon
    r"(?:\"(?P<dq>[^\"\r\n]{1,512})\"|'(?P<sq>[^'\r\n]{1,512})'|(?P<bare>\$\{[^}\s]{0,200}\}|[^\s\"'`,;&<>(){}\[\]]{1,512}))"
)
_AUTH_HEADER = re.compile(
    r"(?i)authorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
    r"(?:(?:basic|digest|token|apikey|api-key|negotiate|bearer)[ \t]{1,3})?(?P<v>[^\s\"',;]{6,4096})"
)
_COOKIE = re.compile(r"(?i)cookie[\"']?[ \t]{0,3}:[ \t]{0,3}[\"']?(?P<v>[^\r\n\"']{1,4096})")
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\*+|x+|•+|\.+|-+|null|none|nil|undefined|true|false|redacted|hidden|masked|changeme|"
    r"\[[A-Z_]+(?::[0-9a-f]{8})?\]|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|\$[A-Z_][A-Z0-9_]*|%\([a-z_]+\)s|%s)$"
)
_IS_PASSWORD = re.compile(_LOGIN_LABELS, re.IGNORECASE)


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s own character distribution."""
    counts = Counter(value)
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def _value_group(match: re.Match[str]) -> str:
    return "dq" if match.group("dq") is not None else "sq" if match.group("sq") is not None else "bare"


def _secret_ok(match: re.Match[str], text: str) -> bool:
    value = match.group(_value_group(match))
    if _PLACEHOLDER.match(value.strip()):
        return False
    if _IS_PASSWORD.fullmatch(match.group("label")):
        return True  # a labelled password is redacted whatever it looks like
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return len(value) >= 8 and (shannon_entropy(value) >= 3.0 or (has_digit and has_alpha))


class _SecretRule(Rule):
    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        reached = start
        for match in self.candidates(text, start, end, lowered):
            if match.start() >= reached and _secret_ok(match, text):
                yield match.span(_value_group(match))
                reached = match.end()


def _not_placeholder(match: re.Match[str], text: str) -> bool:
    return not _PLACEHOLDER.match(match.group("v").strip())


# --- credentials in URLs (RFC 3986 §3.2.1: userinfo is deprecated for passwords) ---------------
_URL_CREDENTIALS = re.compile(r"://(?<=[A-Za-z0-9+.-]://)(?P<v>[^\s:/?#@\[\]\"'<>]{0,256}:[^\s/?#@\"'<>\[\]]{1,256})@")

# --- dates of birth, only when labelled -------------------------------------------------------
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DOB = re.compile(
    r"(?i)(?<![a-z])(?:dob|d\.o\.b\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthday|born(?:[ ]on)?"
    r"|geburtsdatum|geboren(?:[ ]am)?|n[ée]e?[ ]le|date[ ]de[ ]naissance|fecha[ ]de[ ]nacimiento"
    r"|data[ ]di[ ]nascita|data[ ]de[ ]nascimento)"
    r"[\"']?[ \t]{0,3}[:=#-]?[ \t]{0,3}[\"']?"
    r"(?P<v>\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
    r"|\d{1,2}(?:st|nd|rd|th)?[ ](?:of[ ])?" + _MONTH + r"\.?,?[ ]\d{4}"
    r"|" + _MONTH + r"\.?[ ]\d{1,2}(?:st|nd|rd|th)?,?[ ]\d{4})(?!\d)"
)

# --- private keys (RFC 7468 §2: pre- and post-encapsulation boundaries) ------------------------
PEM_BEGIN = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]{0,40}?PRIVATE KEY(?: BLOCK)?)-----")
_PEM_UNTERMINATED_BODY = re.compile(r"[A-Za-z0-9+/=\s\\:,-]{0,1048576}")
MAX_PEM_CHARS = 65536


class _PrivateKeyRule(Rule):
    """Header to matching footer, found with ``str.find`` so that missing footers cost one scan.

    A block without its footer is redacted from the header to the end of the base64-looking text
    that follows it (the rest of a truncated key must not survive).
    """

    def spans(self, text: str, start: int, end: int, lowered: str | None = None) -> Iterator[tuple[int, int]]:
        pos = start
        next_footer = -2  # unknown
        while True:
            match = PEM_BEGIN.search(text, pos)
            if match is None:
                return
            if next_footer != -1 and next_footer < match.end():
                next_footer = text.find("-----END ", match.end())
            footer = f"-----END {match.group('label')}-----"
            stop = -1
            if next_footer != -1 and next_footer - match.end() <= MAX_PEM_CHARS:
                stop = text.find(footer, next_footer, match.end() + MAX_PEM_CHARS + len(footer))
            if stop != -1:
                yield match.start(), stop + len(footer)
                pos = stop + len(footer)
                next_footer = -2
            else:
                body = _PEM_UNTERMINATED_BODY.match(text, match.end())
                body_end = body.end() if body else match.end()
                yield match.start(), body_end
                pos = max(body_end, match.end())


def _password_anchors() -> list[str]:
    """Where each of PASSWORD_WORDS starts: the word, but for "pass…" (the "pass" anchor finds those);
    a phrase led by an ASCII word, in each way a label joins its words ("mot de passe", "mot_de_passe",
    "mot-de-passe", "motdepasse"), so that "mot" in "remote" sends no text the slow way."""
    anchors: set[str] = set()
    for word in PASSWORD_WORDS:
        first = word.split(" ")[0]
        if word.startswith("pass"):
            continue
        if first == word or not first.isascii():
            anchors.add(first)
        else:
            anchors.update(word.replace(" ", joiner) for joiner in (" ", "_", "-", ""))
    return sorted(anchors)


_SECRET_ANCHORS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "private_key",
    "private-key",
    "signing_key",
    "signing-key",
    "encryption_key",
    "encryption-key",
    "client-secret",
    "credential",
    "auth_key",
    "auth-key",
    "session",
)
# Apart, so that the rule they anchor runs only on a text the anchor scan found one of them in: looking
# for 36 more anchors in every text that says "token" or "session" doubled the cost of the rule.
_PASSWORD_ANCHORS = tuple(_password_anchors())
_DOB_ANCHORS = ("dob", "d.o.b", "date", "birth", "born", "geb", "né", "ne le", "nee le", "fecha", "data")
_API_KEY_ANCHORS = (
    "sk-",
    "sk_",
    "rk_",
    "pk_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "akia",
    "asia",
    "abia",
    "acca",
    "xox",
    "xapp-",
    "whsec_",
    "aiza",
    "glpat-",
    "npm_",
    "hf_",
    "pypi-",
    "sg.",
)

# ``min_digits`` is the fewest digits a finding can hold: a card number 13, an SSN 9, a phone number 8
# (E.164 numbers are accepted from 8 digits, national ones from 9, US ones have 10), a date of birth or
# a dotted quad 4, an IBAN its 2 check digits. Short strings such as names then skip every digit rule.
RULES: tuple[Rule, ...] = (
    _PrivateKeyRule("PRIVATE_KEY", PEM_BEGIN, literals=("-----BEGIN ",), windowed=False),
    Rule("URL_CREDENTIALS", _URL_CREDENTIALS, group="v", literals=("://",)),
    Rule("JWT", _JWT, literals=("eyJ",)),
    Rule("API_KEY", _API_KEY, validate=_api_key_ok, anchors=_API_KEY_ANCHORS),
    Rule("API_KEY", _AWS_SECRET, group="v", anchors=("aws", "secret")),
    Rule("BEARER", _BEARER, group="v", validate=_not_placeholder, folded_literals=("bearer",)),
    _SecretRule("SECRET", _SECRET, anchors=_SECRET_ANCHORS),
    _SecretRule("SECRET", _SECRET, anchors=_PASSWORD_ANCHORS),  # "Passwort:", "mot de passe :", "密码:"
    Rule("SECRET", _AUTH_HEADER, group="v", validate=_not_placeholder, anchors=("authorization",)),
    Rule("SECRET", _COOKIE, group="v", validate=_not_placeholder, anchors=("cookie",)),
    _EmailRule("EMAIL", _EMAIL_DOMAIN, literals=("@",)),
    _IbanRule("IBAN", _IBAN, min_digits=2, needs_upper=True),
    Rule("CARD", _CARD, validate=_card_ok, min_digits=13),
    Rule("SSN", _SSN, validate=_ssn_ok, min_digits=9),
    Rule("SSN", _SSN_LABELLED, group="v", validate=_ssn_labelled_ok, min_digits=9, anchors=("ssn", "social")),
    Rule("DOB", _DOB, group="v", min_digits=4, anchors=_DOB_ANCHORS),
    Rule("IP", _IPV4, validate=_ipv4_ok, min_digits=4, literals=(".",)),
    Rule("IP", _IPV6, validate=_ipv6_ok, literals=(":",)),
    _PhoneRule("PHONE", _PHONE, min_digits=8),
)


def _trie_pattern(words: set[str]) -> str:
    """An expression that matches the longest of ``words`` starting at a place, written as a trie.

    It finds what the alternation of the words longest first finds, about three times faster: the
    engine tries the branches for one next character instead of every word at every place.
    """
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict[str, dict]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body  # longer words first, then the word ending here

    return pattern(trie)


_ANCHORS = {anchor for rule in RULES for anchor in rule.anchors}
# One pass over the lower-cased text tells which anchors occur at all (longest first at each place).
# Anchors that start with a non-ASCII letter ("пароль", "密码") are looked for apart, in non-ASCII text
# only: in the trie they would slow the pass over every text by half.
ANCHOR_SCAN = re.compile(_trie_pattern({anchor for anchor in _ANCHORS if anchor[0].isascii()}))
_NON_ASCII_ANCHORS = tuple(sorted(anchor for anchor in _ANCHORS if not anchor[0].isascii()))


def _may_hold_another(anchor: str, anchors: set[str]) -> bool:
    """Whether another anchor may begin inside ``anchor`` (its tail is the start of one, or holds one)."""
    tails = [anchor[place:] for place in range(1, len(anchor))]
    return any(other.startswith(tail) or tail.startswith(other) for tail in tails for other in anchors)


_ASCII_ANCHORS = {anchor for anchor in _ANCHORS if anchor[0].isascii()}
_MAY_HOLD_ANOTHER = frozenset(anchor for anchor in _ASCII_ANCHORS if _may_hold_another(anchor, _ASCII_ANCHORS))


def _overlapping_anchors(lowered: str) -> list[str]:
    """``ANCHOR_SCAN``'s matches and those that begin inside them (slower: only when one may)."""
    found = []
    for match in ANCHOR_SCAN.finditer(lowered):
        found.append(match.group())
        place, end = match.start() + 1, match.end()
        while place < end:
            inner = ANCHOR_SCAN.match(lowered, place)
            if inner is not None:
                found.append(inner.group())
                end = max(end, inner.end())
            place += 1
    return found


def anchors_in(lowered: str) -> list[str]:
    """The anchors in lower-cased text: ``ANCHOR_SCAN``'s, then each non-ASCII-led one that occurs.

    The scan's matches do not overlap, so the places inside each match are tried too: an anchor may
    begin inside another ("awsecret=…": "aws", and "secret" from its third letter).
    """
    found = ANCHOR_SCAN.findall(lowered)
    if any(anchor in _MAY_HOLD_ANOTHER for anchor in found):
        found = _overlapping_anchors(lowered)
    if not lowered.isascii():
        found.extend(anchor for anchor in _NON_ASCII_ANCHORS if anchor in lowered)
    return found
