"""JSON read from strangers (registration requests, client metadata documents), refused unless unambiguous.

I-JSON (RFC 7493): UTF-8 (§2.1), no unpaired surrogates (§2.1), unique member names (§2.3), and
no ``NaN`` or ``Infinity`` (not JSON at all, RFC 8259 §6); nested at most ``max_depth`` levels, so
that nothing downstream (storage, rendering) recurses past Python's limit.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class JsonRefused(ValueError):
    """The body is not acceptable JSON; the message says why and is safe to show (no input echoed)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise JsonRefused("A member name is repeated.")  # RFC 7493 §2.3: names MUST be unique
    return result


def _refuse_constant(_: str) -> None:
    raise JsonRefused("NaN and Infinity are not JSON.")


def _is_unpaired_surrogate_free(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # json.loads decodes "\ud800" to a lone surrogate, which UTF-8 cannot hold
        return False
    return True


def _check(document: object, max_depth: int) -> None:
    """Depth and strings, walked without recursion."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not _is_unpaired_surrogate_free(value):
                raise JsonRefused("The JSON has an unpaired surrogate.")  # RFC 7493 §2.1
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise JsonRefused(f"The JSON is nested deeper than {max_depth} levels.")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)


def decode(body: bytes, *, max_depth: int = MAX_DEPTH) -> object:
    """The document in ``body``; raises :class:`JsonRefused` for anything I-JSON refuses."""
    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except JsonRefused:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested past the parser's limit
        raise JsonRefused("The request body is not valid JSON.") from None
    _check(document, max_depth)
    return document
