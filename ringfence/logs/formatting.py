"""The one log formatter: a pipeline of small processors from a ``LogRecord`` to one redacted line.

    record_fields   ts, level, logger, message, request_id, host identifiers, extras, exception
    bounded         every string capped (8 KiB, marked), bytes decoded, containers trimmed
    redacted        every string value through the Redactor in keyed-hash mode
    render_json     one JSON object per line (ASCII, so any stream can take it), or render_text

Each processor is a plain function ``(event) -> event`` testable alone. The formatter never
raises: a record that cannot be formatted becomes a fallback line that names only the logger,
the level and why, so a bad value can never put raw text in the log or lose the line.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import re
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ringfence.config import LogFormat
from ringfence.detect.redactor import Redactor, is_secret_key
from ringfence.logs.context import HOST_FIELD_PREFIX, current_context

Event = dict[str, Any]
Processor = Callable[[Event], Event]

MAX_STRING = 8 * 1024  # characters per string value, before redaction
MAX_TRACEBACK = 16 * 1024  # the traceback keeps its end: the frames nearest the error
MAX_ITEMS = 50  # entries kept per list or mapping
MAX_DEPTH = 4
MAX_FIELDS = 50  # extra fields per line
MAX_KEY = 100
MAX_NODES = 2000  # values (at any depth) per line
_MARK_ROOM = 64
MAX_LINE = 64 * 1024  # a longer line keeps its fixed fields and drops the extras

# The attributes every LogRecord has; anything else on a record came in through ``extra=``.
# uvicorn adds ``color_message`` (the message with terminal colour codes): not a field worth a line.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}
_FIXED = ("ts", "level", "logger", "message", "request_id")
_RESERVED = frozenset({*_FIXED, "exception", "stack", "truncated_fields"})
_ACCESS_LOGGER = "uvicorn.access"
_SPACES = (" ", "\n", "\t", "\r", "\f", "\v")
_WORDS = re.compile(r"(\s+)")
# What json.dumps(..., ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str) makes, with
# one encoder for every line (json.dumps makes one per call); it holds no state between calls.
_JSON_LINE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)


# -- processors ------------------------------------------------------------------------------------

def record_fields(record: logging.LogRecord) -> Event:
    """The line's fields, raw: fixed ones first, then the request's context, then ``extra=`` fields."""
    event: Event = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname,
        "logger": record.name,
    }
    access = _access_fields(record) if record.name == _ACCESS_LOGGER and _is_access_record(record) else None
    event["message"] = access.pop("message") if access else _message(record)
    context = current_context()
    if context.request_id is not None:
        event["request_id"] = context.request_id
    event.update(context.fields)
    event.update(access or {})
    extras = {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}
    for key in list(extras)[:MAX_FIELDS]:
        reserved = key in event or key in _RESERVED or key.startswith(HOST_FIELD_PREFIX)
        name = f"extra.{key}" if reserved else key  # an extra never stands in for a field ringfence writes
        event[name] = extras[key]
    if record.exc_info and record.exc_info[0] is not None:
        event["exception"] = _exception(record.exc_info)
    if record.stack_info:
        event["stack"] = _tail(record.stack_info, MAX_TRACEBACK)
    return event


def bounded(event: Event) -> Event:
    """Every value made JSON-safe and bounded: strings capped, bytes decoded, containers trimmed."""
    budget = [MAX_NODES]
    return {_key(key): value if key == "exception" else _bound(value, 0, budget) for key, value in event.items()}


def redactor_processor(redactor: Redactor) -> Processor:
    """Every string value of the line through ``redactor``; ``extra=`` fields by key too (``password``...)."""

    def redacted(event: Event) -> Event:
        out: Event = {}
        for key, value in event.items():
            if key in ("ts", "level"):
                out[key] = value  # produced here, never from the caller
            elif key == "exception":
                out[key] = {name: redactor.redact(text) for name, text in value.items()}
            elif isinstance(value, str) and (key in _FIXED or key.startswith(HOST_FIELD_PREFIX)):
                out[key] = redactor.redact(value)  # by value only: these names are ringfence's own
            elif isinstance(value, str) and not is_secret_key(key):  # what redact_value does with it, directly
                out[redactor.redact(key)] = redactor.redact(value)
            else:  # keys may hold personal data too; values under a secret-looking key go whole
                out[redactor.redact(key)] = _redacted_tree(redactor, key, value, is_secret_key(key))
        return out

    return redacted


def _redacted_tree(redactor: Redactor, key: str, value: Any, secret: bool) -> Any:
    """``value`` (as :func:`bounded` left it) with keys and values redacted in one walk, as
    ``redact_value`` would: everything under a secret-looking key replaced whole."""
    kind = type(value)
    if not secret:  # the usual leaves, as redact_value would treat them, without its walk
        if kind is str:
            return redactor.redact(value)
        if kind is bool or value is None or kind is float or (kind is int and abs(value) < 1_000_000):
            return value
    if kind is dict:
        return {redactor.redact(name): _redacted_tree(redactor, name, item, secret or is_secret_key(name))
                for name, item in value.items()}
    if kind is list:
        return [_redacted_tree(redactor, key, item, secret) for item in value]
    if secret:
        return redactor.redact_value({key: value})[key]  # ``key`` names a secret: the SECRET replacement
    return redactor.redact_value(value)


def render_json(event: Event) -> str:
    """One JSON object on one line; ASCII-only, so no stream encoding can fail on it."""
    line = _JSON_LINE.encode(event)
    if len(line) <= MAX_LINE:
        return line
    kept = {key: event[key] for key in (*_FIXED, "exception") if key in event}
    kept["truncated_fields"] = sorted(key for key in event if key not in kept)[:MAX_FIELDS]
    line = _JSON_LINE.encode(kept)
    return line if len(line) <= MAX_LINE else render_json(fallback_event(event, "line too long"))


def render_text(event: Event) -> str:
    """For development: ``ts LEVEL logger [request_id] message key=value ...``, then the traceback."""
    fields = dict(event)
    head = [fields.pop("ts", ""), f"{fields.pop('level', ''):<7}", fields.pop("logger", "")]
    request_id = fields.pop("request_id", None)
    if request_id:
        head.append(f"[{request_id}]")
    head.append(_one_line(str(fields.pop("message", ""))))
    exception = fields.pop("exception", None)
    head += [f"{key}={_one_line(json.dumps(value, ensure_ascii=False, default=str))}" for key, value in fields.items()]
    line = " ".join(head)
    if exception:
        line += "\n" + (exception.get("traceback") or f"{exception.get('type')}: {exception.get('message')}")
    return line


def fallback_event(event_or_record: Any, reason: str) -> Event:
    """The line written when a record cannot be formatted: where it came from and why, no values."""
    level = getattr(event_or_record, "levelname", None)
    name = getattr(event_or_record, "name", None)
    if isinstance(event_or_record, Mapping):
        level, name = event_or_record.get("level"), event_or_record.get("logger")
    return {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level if isinstance(level, str) and level.isalpha() and len(level) < 20 else "ERROR",
        "logger": name if isinstance(name, str) and len(name) < 200 and name.isprintable() else "(unknown)",
        "message": f"(a log line could not be written: {reason})",
    }


# -- the formatter ---------------------------------------------------------------------------------

class RedactingFormatter(logging.Formatter):
    """The formatter every handler uses: the processors above, then JSON or text."""

    def __init__(self, redactor: Redactor, log_format: LogFormat = "json") -> None:
        super().__init__()
        if log_format not in ("json", "text"):
            raise ValueError(f"log format must be 'json' or 'text', not {log_format!r}")
        self.processors: tuple[Processor, ...] = (bounded, redactor_processor(redactor))
        self.render = render_json if log_format == "json" else render_text
        self.log_format = log_format

    def format(self, record: logging.LogRecord) -> str:
        try:
            event = record_fields(record)
            for processor in self.processors:
                event = processor(event)
            return self.render(event)
        except Exception as exc:  # never raise into the code that logs; never write what failed
            return render_json(fallback_event(record, type(exc).__name__))


# -- helpers ---------------------------------------------------------------------------------------

def _message(record: logging.LogRecord) -> str:
    """The formatted message, with over-long string arguments capped before they are formatted."""
    if isinstance(record.args, tuple) and all(_short(arg) for arg in record.args):
        with contextlib.suppress(Exception):  # on error, the message below says what went wrong
            return _capped(record.getMessage(), MAX_STRING)  # nothing to cap: the record as it is
    record = copy.copy(record)  # other handlers see the record as it was logged
    if isinstance(record.args, tuple):
        record.args = tuple(_capped_argument(arg) for arg in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {key: _capped_argument(arg) for key, arg in record.args.items()}
    try:
        return _capped(record.getMessage(), MAX_STRING)
    except Exception as exc:  # a format string that does not match its arguments
        template = _safe_str(record.msg)
        return f"{_capped(template, MAX_STRING)} (log arguments did not fit the message: {type(exc).__name__})"


def _short(value: Any) -> bool:
    return type(value) in (int, float) or (type(value) is str and len(value) <= MAX_STRING)


def _capped_argument(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING:
        return _capped(value, MAX_STRING)
    if isinstance(value, bytes | bytearray) and len(value) > MAX_STRING:
        return _bound(value, 0, [1])
    return value


def _is_access_record(record: logging.LogRecord) -> bool:
    return isinstance(record.args, tuple) and len(record.args) == 5


def _access_fields(record: logging.LogRecord) -> Event:
    """uvicorn's access line without the query string (it can carry a refused ``?access_token=``)."""
    client, method, path, version, status = record.args  # type: ignore[misc]
    path = str(path).split("?", 1)[0]
    return {
        "message": f'{client} - "{method} {path} HTTP/{version}" {status}',
        "method": str(method),
        "path": path,
        "status": status,
        "client": str(client),
    }


def _exception(exc_info: Any) -> dict[str, str]:
    kind, value, tb = exc_info
    try:
        text = "".join(traceback.format_exception(kind, value, tb))
    except Exception:
        text = "(the traceback could not be formatted)"
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__,
        "message": _capped(_safe_str(value), MAX_STRING),
        "traceback": _tail(text, MAX_TRACEBACK),
    }


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"(unprintable {type(value).__name__})"


def _bound(value: Any, depth: int, budget: list[int]) -> Any:
    """``value`` as JSON-able data of bounded size; ``budget`` counts the nodes left for the whole line."""
    budget[0] -= 1
    kind = type(value)
    if kind is str and len(value) <= MAX_STRING and value.isascii():
        return value  # the common case: short, and ASCII has no lone surrogates
    # The other usual values by their exact type, as the checks below would take them: the same result.
    if value is None or kind is bool or (kind is int and abs(value) < 2**63):
        return value
    if kind is dict and depth < MAX_DEPTH and budget[0] > 0 and len(value) <= MAX_ITEMS:
        return {_key(key): _bound(item, depth + 1, budget) for key, item in value.items()}
    if kind is list and depth < MAX_DEPTH and budget[0] > 0 and len(value) <= MAX_ITEMS:
        return [_bound(item, depth + 1, budget) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else f"(an integer of {value.bit_length()} bits)"
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, str):  # room for the mark, so a message cut before it is not cut again
        return _capped(value, MAX_STRING + _MARK_ROOM)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[: MAX_STRING + 1])
        return _capped(raw.decode("utf-8", "replace"), MAX_STRING, total=len(value))
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return f"({type(value).__name__}, nested too deep)" if depth >= MAX_DEPTH else "(omitted: too many values)"
    if isinstance(value, Mapping):
        bounded_items = {_key(key): _bound(item, depth + 1, budget)
                         for key, item in itertools.islice(value.items(), MAX_ITEMS)}
        if len(value) > MAX_ITEMS:
            bounded_items["(truncated)"] = f"{len(value) - MAX_ITEMS} more entries"
        return bounded_items
    if isinstance(value, list | tuple | set | frozenset):
        out = [_bound(item, depth + 1, budget) for item in itertools.islice(value, MAX_ITEMS)]
        if len(value) > MAX_ITEMS:
            out.append(f"({len(value) - MAX_ITEMS} more items)")
        return out
    return _capped(_safe_str(value), MAX_STRING)


def _key(key: Any) -> str:
    if type(key) is str and len(key) <= MAX_KEY and key.isascii():
        return key
    return _capped(key if isinstance(key, str) else _safe_str(key), MAX_KEY)


def _capped(text: str, limit: int, total: int | None = None) -> str:
    """At most ``limit`` characters of valid Unicode, marked when cut.

    The cut never leaves part of a value behind for the redactor to miss (half a card number is
    no longer a card number): the word it falls in and any digit groups before it are dropped.
    """
    size = len(text) if total is None else total
    if size <= limit and len(text) <= limit:
        return _valid_unicode(text)
    head = _valid_unicode(_safe_head(text, limit))
    return f"{head}...[truncated, {size} in all]"


def _safe_head(text: str, limit: int) -> str:
    if len(text) > limit and not text[limit].isspace():
        limit = max(0, *(text.rfind(space, 0, limit) for space in _SPACES))
    parts = _WORDS.split(text[:limit])  # words and the whitespace between them, any whitespace
    while parts and (not parts[-1] or parts[-1].isspace() or _is_value_fragment(parts[-1])):
        parts.pop()
    return "".join(parts)


def _safe_tail(text: str, limit: int) -> str:
    start = len(text) - limit
    if start > 0 and not text[start - 1].isspace():
        found = [index for index in (text.find(space, start) for space in _SPACES) if index != -1]
        start = min(found) + 1 if found else len(text)
    parts = _WORDS.split(text[start:])
    while parts and (not parts[0] or parts[0].isspace() or _is_value_fragment(parts[0])):
        parts.pop(0)
    return "".join(parts)


def _is_value_fragment(word: str) -> bool:
    """A piece that could be one group of a spaced number, IBAN or phone number (``4111``, ``AB12``, ``(415)``)."""
    if not word:
        return False
    if len(word) <= 6 and (any(char.isdigit() for char in word) or word.isupper()):
        return True
    return all(char.isdigit() or char in "+-().:/" for char in word)


def _valid_unicode(text: str) -> str:
    """Lone surrogates (undecodable bytes smuggled into a str) become ``?``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _tail(text: str, limit: int) -> str:
    """The last ``limit`` characters (a traceback's end names the error), cut like :func:`_capped`."""
    if len(text) <= limit:
        return _valid_unicode(text)
    return f"[truncated, {len(text)} in all]..." + _valid_unicode(_safe_tail(text, limit))


def _one_line(text: str) -> str:
    """Control characters escaped, so that a value can never start a forged line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
