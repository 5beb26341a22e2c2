"""The one rule for a client's name, whether it comes from RFC 7591 registration or a metadata document.

The name is shown to people on the consent and account pages, so it must read as what it is: a
right-to-left override makes ``\\u202eelgooG\\u202c`` display as "Google", and zero-width or
control characters make two names look alike. Such names are refused, not cleaned.
"""

from __future__ import annotations

from ringfence.detect.invisible import hides_text

MAX_CLIENT_NAME_CHARS = 200


def client_name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a client's name (a phrase to follow "client_name"), or None."""
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if len(name) > MAX_CLIENT_NAME_CHARS:
        return f"must be at most {MAX_CLIENT_NAME_CHARS} characters"
    if hides_text(name):  # default-ignorable (bidi controls among them) or control
        return "must not contain invisible, bidirectional or control characters"
    if any("\ud800" <= char <= "\udfff" for char in name):  # RFC 8259 §8.2: a lone surrogate is not text
        return "must be valid Unicode text"
    return None
