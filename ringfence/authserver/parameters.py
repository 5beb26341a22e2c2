"""The characters each OAuth request parameter may hold (RFC 6749 Appendix A, RFC 7636, RFC 8707).

Checked once, as a request is read, before Authlib sees it. Authlib copies some values (such as
``redirect_uri`` and ``response_type``) into its error descriptions, and error descriptions may hold
only printable ASCII without ``"`` or ``\\`` (RFC 6749 §5.2); a value outside its grammar is refused
here instead, by the parameter's name, and never echoed. Parameters this server does not know are
ignored, as RFC 6749 §3.1 requires; an empty value is left for the grant to judge (§3.1: as if omitted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from authlib.oauth2.rfc6749 import InvalidRequestError

_VSCHAR = re.compile(r"[\x20-\x7e]*")  # RFC 6749 Appendix A: VSCHAR = %x20-7E
_SCOPE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # A.4: NQCHAR = %x21 / %x23-5B / %x5D-7E, and SP
_RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_ ]*")  # A.3: response-char = "_" / DIGIT / ALPHA, and SP
_URI = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")  # RFC 3986 §2: unreserved, reserved, "%"
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]*")  # RFC 7636 §4.1, §4.2: code_verifier, code_challenge
_NAME = re.compile(r"[A-Za-z0-9\-._]*")  # A.10: name-char = "-" / "." / "_" / DIGIT / ALPHA

GRAMMAR: dict[str, re.Pattern[str]] = {
    "client_id": _VSCHAR,  # A.1
    "client_secret": _VSCHAR,  # A.2
    "response_type": _RESPONSE_TYPE,  # A.3
    "scope": _SCOPE,  # A.4
    "state": _VSCHAR,  # A.5
    "redirect_uri": _URI,  # A.6: URI-reference
    "code": _VSCHAR,  # A.11
    "grant_type": _URI,  # A.10: grant-name / URI-reference
    "refresh_token": _VSCHAR,  # A.17
    "code_verifier": _UNRESERVED,
    "code_challenge": _UNRESERVED,
    "code_challenge_method": _NAME,  # RFC 7636 §4.3: "plain" / "S256"
    "resource": _URI,  # RFC 8707 §2: an absolute URI
    "token": _VSCHAR,  # RFC 7009 §2.1, RFC 7662 §2.1
    "token_type_hint": _NAME,  # RFC 7009 §2.1: a registered type name
}


def check_parameters(items: Iterable[tuple[str, str]]) -> None:
    """Refuse a known parameter with a character its grammar does not allow (``invalid_request``)."""
    for name, value in items:
        grammar = GRAMMAR.get(name)
        if grammar is not None and not grammar.fullmatch(value):
            raise InvalidRequestError(f"The {name} parameter has characters it may not contain.")


def repeated_parameter(name: str) -> InvalidRequestError:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once. Only a known name is shown."""
    shown = f"The {name} parameter" if name in GRAMMAR else "A parameter"
    return InvalidRequestError(f"{shown} is repeated.")
