"""Formatting one record in-process, the way ``ringfence serve`` does."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from ringfence.detect.redactor import RememberingRedactor
from ringfence.logs.formatting import RedactingFormatter

KEY = b"k" * 32
_LOGGER = logging.getLogger("tests.logs")


_REDACTORS: dict[bytes, RememberingRedactor] = {}


def formatter(log_format: str = "json", key: bytes = KEY) -> RedactingFormatter:
    """As in production: one long-lived redactor per key, remembering clean strings across lines."""
    redactor = _REDACTORS.setdefault(key, RememberingRedactor(replacement="hash", hash_key=key))
    return RedactingFormatter(redactor, log_format)  # type: ignore[arg-type]


def record(msg: Any, *args: Any, name: str = "tests.logs", level: int = logging.INFO, exc: BaseException | None = None,
           extra: dict[str, Any] | None = None) -> logging.LogRecord:
    """A record as ``logger.log(level, msg, *args, exc_info=exc, extra=extra)`` would make it."""
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    return _LOGGER.makeRecord(name, level, __file__, 1, msg, args, exc_info, extra=extra)


def line(msg: Any, *args: Any, **kwargs: Any) -> str:
    """The JSON line for one record."""
    return formatter().format(record(msg, *args, **kwargs))


def parsed(msg: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The JSON line for one record, checked to be exactly one line and parsed."""
    text = line(msg, *args, **kwargs)
    assert "\n" not in text and "\r" not in text
    return json.loads(text)


def strings(value: Any) -> list[str]:
    """Every string in a parsed line, keys included."""
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else [str(value)]
