"""Correlation in the audit log (issue #17 item 7): each record carries the request id of its log lines
and a keyed hash of the host's session id, both covered by the hash chain; records written before
revision 0004 still verify; ``ringfence audit show`` filters by them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import typer
from alembic import command
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ringfence.audit.checkpoints import CheckpointKey
from ringfence.audit.correlation import (
    MCP_SESSION_SOURCE,
    SESSION_KEY_NAME,
    Correlation,
    bind_host_session,
    bind_request,
    current_correlation,
    session_hash,
    unbind,
)
from ringfence.audit.log import AuditLog
from ringfence.audit.records import canonical_json, sha256_hex
from ringfence.cli.audit import show, verify
from ringfence.logs.context import bind_host_identifiers, bind_request_id, current_context, set_hash_key
from ringfence.logs.context import unbind as unbind_log
from ringfence.store.database import Database
from ringfence.store.pseudonyms import keyed_hash, pseudonym_key
from ringfence.store.schema import alembic_config
from ringfence.store.secrets import data_secret
from tests.audit.conftest import fill, sql

pytestmark = pytest.mark.anyio

HOST_SESSION = Correlation("req-1", "openai/session", "conv-42")

cli = typer.Typer()
cli.command("show")(show)
cli.command("verify")(verify)
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(cli, list(args))


def shown(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def expected_hash(data_dir: Path, source: str, session_id: str) -> str:
    """HMAC-SHA256 under the data folder's pseudonym key, as the README says: written out here."""
    key = (data_dir / "pseudonym.key").read_bytes()
    return hmac.new(key, f"{source}\x00{session_id}".encode(), hashlib.sha256).hexdigest()[:16]


# -- the columns and the chain ------------------------------------------------------------------------


async def test_a_record_carries_the_request_id_and_a_keyed_hash_of_the_host_session(log: AuditLog,
                                                                                  data_dir: Path) -> None:
    record = await log.append("tool.call", principal="user-1", tool="search", outcome="ok", correlation=HOST_SESSION)
    assert record.request_id == "req-1"
    assert record.session_hash == expected_hash(data_dir, "openai/session", "conv-42")
    assert "conv-42" not in json.dumps(record.as_json())
    assert (data_dir / "pseudonym.key").stat().st_mode & 0o777 == 0o600, "the key is private, made on first use"
    assert (await log.verify()).ok


async def test_a_record_outside_any_request_has_neither(log: AuditLog, data_dir: Path) -> None:
    record = await log.append("key.rotated", principal="ringfence", outcome="ok")
    assert (record.request_id, record.session_hash) == (None, None)
    assert not (data_dir / "pseudonym.key").exists(), "no key is made for a record without a session"


async def test_the_request_in_progress_is_what_a_record_carries_by_default(log: AuditLog) -> None:
    """What logs/request_ids.py and the gate bind: the request id, then the host's openai/session over
    the Mcp-Session-Id header."""
    token = bind_request("req-2", "mcp-session-9")
    try:
        by_header = await log.append("tool.call", principal="user-1", outcome="ok")
        bind_host_session("conv-7")
        by_host = await log.append("tool.call", principal="user-1", outcome="ok")
    finally:
        unbind(token)
    assert current_correlation() == Correlation()
    key = data_secret(log.data_dir, SESSION_KEY_NAME)
    assert (by_header.request_id, by_header.session_hash) == ("req-2", session_hash(key, MCP_SESSION_SOURCE,
                                                                                    "mcp-session-9"))
    assert (by_host.request_id, by_host.session_hash) == ("req-2", session_hash(key, "openai/session", "conv-7"))


async def test_a_record_s_session_hash_is_its_log_lines_host_session_field(log: AuditLog) -> None:
    """One keyed-hash unit and one key (store/pseudonyms.py): the gate binds the host's ``_meta`` once,
    and the log lines' ``host.openai/session`` and the record's session hash come out equal."""
    set_hash_key(pseudonym_key(log.data_dir))  # what configure_logging does with the data folder
    token, logged = bind_request("req-3"), bind_request_id("req-3")
    try:
        bind_host_identifiers({"openai/session": "conv-9"})
        field = current_context().fields["host.openai/session"]
        record = await log.append("tool.call", principal="user-1", outcome="ok")
    finally:
        unbind_log(logged)
        unbind(token)
        set_hash_key(secrets.token_bytes(32))
    assert record.session_hash == field == keyed_hash(pseudonym_key(log.data_dir), "openai/session", "conv-9")


def test_a_malformed_mcp_session_id_or_host_session_is_not_bound() -> None:
    """MCP 2025-11-25 transports: a session id holds only visible ASCII (0x21 to 0x7E)."""
    token = bind_request("req-3", "has space")
    try:
        bind_host_session(["not", "a", "string"])
        bind_host_session("x" * 257)
        assert current_correlation() == Correlation("req-3")
    finally:
        unbind(token)


TAMPERING = {
    "request id changed": "UPDATE ringfence_audit SET request_id = 'req-forged' WHERE seq = 2",
    "request id removed": "UPDATE ringfence_audit SET request_id = NULL WHERE seq = 2",
    "session hash changed": "UPDATE ringfence_audit SET session_hash = '0123456789abcdef' WHERE seq = 2",
    "session hash removed": "UPDATE ringfence_audit SET session_hash = NULL WHERE seq = 2",
}


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
async def test_changing_or_removing_either_field_of_a_new_record_breaks_the_chain(
        log: AuditLog, database: Database, statement: str) -> None:
    await fill(log, 2, correlation=HOST_SESSION)
    await sql(database, statement)
    report = await log.verify()
    assert report.damage is not None and (report.damage.seq, report.damage.kind) == (2, "modified")


async def test_adding_a_request_id_to_a_record_that_had_none_breaks_the_chain(log: AuditLog,
                                                                             database: Database) -> None:
    await fill(log, 2)
    await sql(database, "UPDATE ringfence_audit SET request_id = 'req-planted' WHERE seq = 1")
    report = await log.verify()
    assert report.damage is not None and (report.damage.seq, report.damage.kind) == (1, "modified")


async def test_a_record_refuses_a_request_id_the_log_would_not_store_faithfully(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="request_id"):
        await log.append("tool.call", principal="u", outcome="ok", correlation=Correlation("has space"))


# -- across the migration ---------------------------------------------------------------------------


def old_record_hash(seq: int, ts: str, prev_hash: str) -> str:
    """A record hash as revision 0003's code made it: these nine fields, nothing else."""
    return sha256_hex(canonical_json({
        "seq": seq, "ts": ts, "kind": "tool.call", "principal": "user-old", "tool": "search", "outcome": "ok",
        "latency_ms": None, "payload_hash": None, "prev_hash": prev_hash,
    }))


def write_revision_0003_log(url: str, data_dir: Path, count: int) -> None:
    """A database at revision 0003 holding ``count`` records and a checkpoint, as the old code wrote them."""
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0003")
        prev = "0" * 64
        for seq in range(1, count + 1):
            ts = f"2026-01-01T00:00:0{seq}.000000Z"
            digest = old_record_hash(seq, ts, prev)
            connection.execute(text(
                "INSERT INTO ringfence_audit (seq, ts, kind, principal, tool, outcome, prev_hash, record_hash) "
                "VALUES (:seq, :ts, 'tool.call', 'user-old', 'search', 'ok', :prev, :digest)"),
                {"seq": seq, "ts": ts, "prev": prev, "digest": digest})
            prev = digest
        connection.execute(text("INSERT INTO ringfence_audit_head (id, seq, record_hash) VALUES (1, :seq, :digest)"),
                           {"seq": count, "digest": prev})
        key, _ = CheckpointKey.load_or_create(data_dir)
        checkpoint = key.sign(count, prev, "2026-01-01T00:00:09.000000Z")
        connection.execute(text("INSERT INTO ringfence_audit_checkpoints (seq, record_hash, ts, key_id, signature) "
                                "VALUES (:seq, :record_hash, :ts, :key_id, :signature)"), checkpoint.as_json())
    engine.dispose()


def test_records_written_before_revision_0004_still_verify_after_it(tmp_path: Path) -> None:
    """``ringfence audit verify`` stays green across the migration: old records hash as they did, new
    ones carry (and are covered for) the request id and session hash."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    write_revision_0003_log(f"sqlite:///{data_dir / 'ringfence.db'}", data_dir, 3)

    async def append_after_upgrade() -> Any:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
        try:
            log = AuditLog(database, data_dir)
            await log.append("tool.call", principal="user-new", tool="search", outcome="ok", correlation=HOST_SESSION)
            await log.checkpoint()
            return await log.verify()
        finally:
            await database.close()

    report = asyncio.run(append_after_upgrade())
    assert report.ok and report.records == 4
    result = run("verify", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit log intact: records #1 to #4; last signed checkpoint at #4")
    records = shown(run("show", "--data-dir", str(data_dir)))
    assert [(r["seq"], r["request_id"], r["session_hash"] is not None) for r in records] == [
        (1, None, False), (2, None, False), (3, None, False), (4, "req-1", True)]


# -- ringfence audit show --request-id / --session / --session-hash --------------------------------------


def filled(data_dir: Path) -> None:
    async def write() -> None:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
        try:
            log = AuditLog(database, data_dir)
            await fill(log, 2, correlation=HOST_SESSION)
            await fill(log, 1, correlation=Correlation("req-other", MCP_SESSION_SOURCE, "mcp-1"))
            await fill(log, 1)
        finally:
            await database.close()

    asyncio.run(write())


def test_show_filters_by_request_id(tmp_path: Path) -> None:
    filled(tmp_path)
    records = shown(run("show", "--data-dir", str(tmp_path), "--request-id", "req-1"))
    assert [(r["seq"], r["request_id"]) for r in records] == [(1, "req-1"), (2, "req-1")]


def test_show_filters_by_the_raw_host_session_id_hashed_with_the_data_folder_s_key(tmp_path: Path) -> None:
    filled(tmp_path)
    by_host = shown(run("show", "--data-dir", str(tmp_path), "--session", "conv-42"))
    assert [r["seq"] for r in by_host] == [1, 2]
    assert {r["session_hash"] for r in by_host} == {expected_hash(tmp_path, "openai/session", "conv-42")}
    by_header = shown(run("show", "--data-dir", str(tmp_path), "--session", "mcp-1"))
    assert [r["seq"] for r in by_header] == [3], "an Mcp-Session-Id is found the same way"
    assert shown(run("show", "--data-dir", str(tmp_path), "--session", "conv-43")) == []
    same = shown(run("show", "--data-dir", str(tmp_path), "--session-hash", by_host[0]["session_hash"]))
    assert [r["seq"] for r in same] == [1, 2]


def test_show_says_what_session_means_in_its_help() -> None:
    result = run("show", "--help")
    assert "hashed with the data folder's" in " ".join(result.output.split())


@pytest.mark.parametrize(("args", "message"), [
    (("--request-id", "two words"), "--request-id 'two words' is not a request id"),
    (("--request-id", "x" * 129), "is not a request id"),
    (("--session", ""), "--session takes a host's session id"),
    (("--session", "line\nbreak"), "--session takes a host's session id"),
    (("--session-hash", "NOT-HEX"), "--session-hash 'NOT-HEX' is not a session hash"),
    (("--session", "conv-42", "--session-hash", "0123456789abcdef"), "give --session or --session-hash, not both"),
])  # fmt: skip
def test_show_refuses_a_filter_no_record_could_match_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                                                 message: str) -> None:
    filled(tmp_path)
    result = run("show", "--data-dir", str(tmp_path), *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_show_by_session_refuses_a_data_folder_without_the_key_and_makes_none(tmp_path: Path) -> None:
    filled(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("show", "--data-dir", str(elsewhere), "--database-url",
                 f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}", "--session", "conv-42")
    assert result.exit_code == 2
    assert f"there is no pseudonym.key in {elsewhere} (check --data-dir)" in result.output
    assert not (elsewhere / "pseudonym.key").exists()


def test_show_by_session_refuses_a_damaged_key_with_one_line(tmp_path: Path) -> None:
    """A key file shorter than a key would hash to nothing the server wrote: refused, as every reader of keys does."""
    filled(tmp_path)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "pseudonym.key").write_bytes(b"short")
    result = run("show", "--data-dir", str(damaged), "--database-url",
                 f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}", "--session", "conv-42")
    assert result.exit_code == 2
    assert "is damaged; restore it from a backup" in result.output
    assert "Traceback" not in result.output
