"""Sets up the one logging pipeline for a ``ringfence`` process.

Every record (ringfence's, uvicorn's error and access logs, the MCP SDK's, the app's own) goes to
the root logger's handlers, and every handler uses the one :class:`RedactingFormatter`. Lines are
JSON, or readable text when standard error is a terminal (unless a format is given).
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

from ringfence.config import ConfigError, LogFormat
from ringfence.detect.redactor import Redactor, RememberingRedactor
from ringfence.logs.context import set_hash_key
from ringfence.logs.formatting import RedactingFormatter
from ringfence.store.pseudonyms import pseudonym_key

LEVELS = ("debug", "info", "warning", "error")
# Loggers that libraries configure with their own handlers; theirs are removed so that each
# record reaches the root's handlers once, through the redacting formatter.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "mcp")


class PrivateTimedRotatingFileHandler(TimedRotatingFileHandler):
    """Daily rotation, keeping ``backupCount`` old files; every file is created readable by the owner only."""

    def _open(self):  # type: ignore[no-untyped-def]
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=lambda path, flags: os.open(path, flags, 0o600))


def pseudonym_redactor(data_dir: Path) -> Redactor:
    """The log redactor: keyed-hash mode, keyed with the deployment's ``pseudonym`` key."""
    try:
        key = pseudonym_key(data_dir)
    except OSError as exc:
        raise ConfigError(f"cannot create the pseudonym key in the data folder {data_dir} ({exc.strerror})") from None
    set_hash_key(key)
    return RememberingRedactor(replacement="hash", hash_key=key)


def default_format() -> LogFormat:
    """Readable text for a person at a terminal; JSON lines for everything else (files, collectors)."""
    try:
        return "text" if sys.stderr.isatty() else "json"
    except (AttributeError, ValueError):  # replaced or closed standard error
        return "json"


def check_log_file(log_file: Path) -> None:
    """Refuse a log file that could not be written, without creating anything (at start-up, before
    anything is written); :class:`ConfigError` says why."""
    existing = log_file
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == log_file and log_file.is_dir():
        problem = "it is a folder"
    elif existing != log_file and not existing.is_dir():
        problem = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK):
        problem = "permission denied"
    else:
        return
    raise ConfigError(f"cannot write the log file {log_file} ({problem})")


def configure_logging(level: str, *, format: LogFormat | None = None, data_dir: Path | None,
                      log_file: Path | None = None, retention_days: int = 30) -> RedactingFormatter:
    """Route every logger through one redacting formatter to standard error (and ``log_file``).

    ``format`` ``None`` is :func:`default_format` on standard error and JSON in ``log_file``.
    ``log_file`` rotates at midnight UTC and keeps ``retention_days`` old files: that is how long
    logs stay on disk. Without ``data_dir`` (at start-up, before anything may be written) values
    are replaced by their type, not a keyed hash. Raises :class:`ConfigError` with a sentence a
    user can act on.
    """
    if level.lower() not in LEVELS:
        raise ConfigError(f"invalid log level {level!r}; use one of {', '.join(LEVELS)}")
    if format not in (None, "json", "text"):
        raise ConfigError(f"invalid log format {format!r}; use json or text")
    if retention_days < 1:
        raise ConfigError("log retention must be at least one day")
    redactor = RememberingRedactor() if data_dir is None else pseudonym_redactor(data_dir)
    formatter = RedactingFormatter(redactor, format or default_format())
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file = PrivateTimedRotatingFileHandler(log_file, when="midnight", utc=True, backupCount=retention_days,
                                                   encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the log file {log_file} ({exc.strerror})") from None
        file.setFormatter(RedactingFormatter(redactor, format or "json"))  # a file is read by tools: JSON
        handlers.append(file)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
    logging.captureWarnings(True)  # warnings.warn() text goes through the redactor too
    return formatter
