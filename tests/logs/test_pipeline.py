"""The pieces around the formatter, in-process: set-up of every logger, request IDs, event lines, opt-in fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

import pytest

from ringfence.app import App
from ringfence.config import ConfigError
from ringfence.declaration import DeclarationError
from ringfence.detect.redactor import Redactor
from ringfence.events import SecurityEvent, argument_summary
from ringfence.logs.configuration import configure_logging
from ringfence.logs.context import keyed_hash
from ringfence.logs.event_lines import EventLogObserver
from ringfence.logs.formatting import RedactingFormatter
from ringfence.logs.request_ids import accepted_request_id
from ringfence.store.secrets import data_secret


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Start the library loggers at no level of their own (an in-process uvicorn of another test sets
    theirs), then put the root logger and the library loggers back as they were."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    libraries = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate,
                        logging.getLogger(name).level)
                 for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "mcp")}
    for name in libraries:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in saved[0]:
            handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, (handlers, propagate, level) in libraries.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)
    logging.captureWarnings(False)


def capture_root() -> io.StringIO:
    """Send the root handler's (our formatter's) output to a buffer."""
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return stream


def test_every_library_logger_goes_through_the_one_redacting_formatter(clean_logging: None, tmp_path: Path) -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.StreamHandler())  # as uvicorn's own config would
    configure_logging("info", data_dir=tmp_path)
    stream = capture_root()
    for name in ("uvicorn.error", "uvicorn.access", "mcp.server.lowlevel", "contacts_app", "ringfence.tools"):
        logging.getLogger(name).warning("from %s: mail jane@example.com", name)
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["uvicorn.error", "uvicorn.access", "mcp.server.lowlevel",
                                                  "contacts_app", "ringfence.tools"], "each once, none lost"
    assert all("jane@example.com" not in line["message"] for line in lines)
    assert all(isinstance(h.formatter, RedactingFormatter) for h in logging.getLogger().handlers)
    assert logging.getLogger("uvicorn.access").handlers == []


def test_the_pseudonym_key_is_the_data_folders_so_instances_agree(clean_logging: None, tmp_path: Path) -> None:
    configure_logging("info", data_dir=tmp_path)
    stream = capture_root()
    logging.getLogger("a").info("jane@example.com")
    expected = Redactor(replacement="hash", hash_key=data_secret(tmp_path, "pseudonym")).redact("jane@example.com")
    assert json.loads(stream.getvalue())["message"] == expected
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_warnings_are_logged_through_the_pipeline(clean_logging: None, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():  # pytest records warnings itself; show this one as a server would
        warnings.simplefilter("always")
        configure_logging("info", data_dir=tmp_path)
        stream = capture_root()
        warnings.warn("deprecated for jane@example.com", UserWarning, stacklevel=1)
    line = json.loads(stream.getvalue())
    assert line["logger"] == "py.warnings" and "jane@example.com" not in line["message"]


def test_the_log_file_rotates_daily_keeps_the_retention_and_is_private(clean_logging: None, tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "ringfence.log"
    configure_logging("info", data_dir=tmp_path, log_file=log_file, retention_days=14)
    files = [h for h in logging.getLogger().handlers if isinstance(h, TimedRotatingFileHandler)]
    assert len(files) == 1
    assert (files[0].when, files[0].backupCount, files[0].utc) == ("MIDNIGHT", 14, True)
    logging.getLogger("a").info("to the file")
    files[0].doRollover()  # what midnight does: the day's file is kept aside, a new one begun
    logging.getLogger("a").info("next day")
    assert json.loads(log_file.read_text())["message"] == "next day"
    rotated = [path for path in log_file.parent.iterdir() if path != log_file]
    assert len(rotated) == 1 and json.loads(rotated[0].read_text())["message"] == "to the file"
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in log_file.parent.iterdir())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"level": "chatty"}, "invalid log level 'chatty'"),
    ({"format": "xml"}, "invalid log format 'xml'"),
    ({"retention_days": 0}, "at least one day"),
])  # fmt: skip
def test_bad_settings_are_refused_with_a_sentence(clean_logging: None, tmp_path: Path, kwargs: dict,
                                                  message: str) -> None:
    level = kwargs.pop("level", "info")
    with pytest.raises(ConfigError, match=message):
        configure_logging(level, data_dir=tmp_path, **kwargs)


def test_a_log_file_that_cannot_be_written_is_refused(clean_logging: None, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write the log file"):
        configure_logging("info", data_dir=tmp_path, log_file=tmp_path / "file" / "ringfence.log")


# -- request IDs -------------------------------------------------------------------------------------

REDACTOR = Redactor()


@pytest.mark.parametrize("value", [b"abc", b"req-1.2:3", b"A" * 128, b"0af7651916cd43dd8448eb211c80319c"])
def test_a_well_formed_request_id_is_kept(value: bytes) -> None:
    assert accepted_request_id([value], REDACTOR) == value.decode()


@pytest.mark.parametrize("values", [
    [], [b""], [b"A" * 129], [b"has space"], [b"semi;colon"], [b"id\r\nX-Evil: 1"], [b"caf\xe9"], [b"a/b"],
    [b"one", b"two"], [b"4111111111111111"], [b"10.1.2.3"], [b"jane@example.com"],
])  # fmt: skip
def test_a_missing_malformed_repeated_or_personal_request_id_is_not_kept(values: list[bytes]) -> None:
    assert accepted_request_id(values, REDACTOR) is None


# -- security events as lines ------------------------------------------------------------------------

def observed_lines(event: SecurityEvent, level: int = logging.INFO) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(Redactor(replacement="hash", hash_key=b"k" * 32)))
    logger = logging.getLogger("ringfence.security")
    logger.addHandler(handler)
    saved, logger.level = logger.level, level
    try:
        EventLogObserver().observe(event)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def observed_line(event: SecurityEvent) -> dict:
    [line] = observed_lines(event)
    return line


def test_a_writes_start_is_a_debug_line_its_outcome_the_info_line() -> None:
    """``tool.started`` is for the audit trail; at INFO the operator reads the call's ``tool.call`` line."""
    started = SecurityEvent("tool.started", "started", tool="add_contact")
    assert observed_lines(started) == []
    [line] = observed_lines(started, logging.DEBUG)
    assert (line["level"], line["event"]) == ("DEBUG", "tool.started")
    assert observed_line(SecurityEvent("tool.call", "ok", tool="add_contact"))["level"] == "INFO"


def test_an_event_is_one_line_with_the_principal_hashed_and_details_redacted() -> None:
    line = observed_line(SecurityEvent("tool.call", "ok", principal="jane@example.com", tool="search_contacts",
                                       client_id="client-1", latency_ms=12.345,
                                       details={"effect": "read", "arguments": {"query": "jane@example.com"}}))
    assert (line["level"], line["message"], line["event"], line["outcome"]) == (
        "INFO", "tool.call ok search_contacts", "tool.call", "ok")
    assert line["principal"] == keyed_hash("jane@example.com", "principal")
    assert line["latency_ms"] == 12.3
    assert line["details"]["arguments"]["query"].startswith("[EMAIL:")
    assert "jane@example.com" not in json.dumps(line)


@pytest.mark.parametrize(("kind", "outcome", "level"), [
    ("auth.failure", "invalid_token", "WARNING"), ("scope.refused", "insufficient_scope", "WARNING"),
    ("tool.call", "failed", "WARNING"), ("tool.call", "declined", "INFO"), ("consent.granted", "granted", "INFO"),
])  # fmt: skip
def test_events_worth_attention_are_warnings(kind: str, outcome: str, level: str) -> None:
    line = observed_line(SecurityEvent(kind, outcome))
    assert line["level"] == level and line["principal"] == "(anonymous)"


# -- opting a field into the records ------------------------------------------------------------------

def test_a_tool_can_opt_a_parameter_into_its_records() -> None:
    app = App("x")

    @app.tool(effect="read", log_arguments=["query"])
    def search(query: str, limit: int = 10) -> str:
        return ""

    assert app.tools["search"].log_arguments == ("query",)
    summary = argument_summary({"query": "jane@example.com", "limit": 5}, b"k" * 32, app.tools["search"].log_arguments)
    assert summary["arguments"] == {"query": "jane@example.com"}, "the value; redacted when written"
    assert summary["argument_fields"] == ["limit", "query"]


@pytest.mark.parametrize(("log_arguments", "problem"), [
    (["nope"], "not its parameters"), ("query", "not a string"), (["kwargs"], "not its parameters"),
])  # fmt: skip
def test_opting_in_an_unknown_parameter_is_a_declaration_error(log_arguments: object, problem: str) -> None:
    app = App("x")
    with pytest.raises(DeclarationError, match=problem):

        @app.tool(effect="read", log_arguments=log_arguments)  # type: ignore[arg-type]
        def search(query: str, **kwargs: object) -> str:
            return ""
