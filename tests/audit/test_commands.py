"""``ringfence audit verify``, ``show`` and ``checkpoint``, driven through a throwaway Typer app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ringfence.audit.log import AuditLog
from ringfence.cli.audit import checkpoint, show, verify
from ringfence.store.database import Database
from tests.audit.conftest import fill, sql

app = typer.Typer()
app.command("verify")(verify)
app.command("show")(show)
app.command("checkpoint")(checkpoint)
runner = CliRunner()


def with_log(data_dir: Path, action: Callable[[AuditLog, Database], Awaitable[Any]], url: str | None = None) -> Any:
    async def run() -> Any:
        database = Database(url or f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
        try:
            await database.start()
            return await action(AuditLog(database, data_dir), database)
        finally:
            await database.close()

    return asyncio.run(run())


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_verify_exits_0_and_says_what_it_covered(tmp_path: Path) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 102))
    result = run("verify", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit log intact: records #1 to #102; last signed checkpoint at #100 (20")
    assert result.output.endswith("); 2 records after it are not yet covered\n")


def test_verify_exits_1_naming_the_first_bad_record_and_the_damage(tmp_path: Path) -> None:
    async def damage(log: AuditLog, database: Database) -> None:
        await fill(log, 5)
        await sql(database, "DELETE FROM ringfence_audit WHERE seq = 3")

    with_log(tmp_path, damage)
    result = run("verify", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        "audit log damaged at record #3 (missing): the chain jumps from #2 to #4, so records were deleted\n"
    )


def test_verify_exits_2_when_there_is_no_audit_log_to_check(tmp_path: Path) -> None:
    result = run("verify", "--data-dir", str(tmp_path / "elsewhere"))
    assert result.exit_code == 2
    assert f"no ringfence data in {tmp_path / 'elsewhere'}; run it where the app's data is, or pass --data-dir" \
        in result.output
    assert not (tmp_path / "elsewhere").exists()  # checking created nothing


@pytest.mark.postgres
def test_verify_reads_the_database_given_by_url(tmp_path: Path, postgres_url: str) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 3), url=postgres_url)
    result = run("verify", "--data-dir", str(tmp_path), "--database-url", postgres_url)
    assert (result.exit_code, result.output) == (
        0, "audit log intact: records #1 to #3; no signed checkpoint yet, so none of them is covered by one\n")


def test_show_prints_the_matching_records_as_json_lines(tmp_path: Path) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 5))
    result = run("show", "--data-dir", str(tmp_path), "--principal", "user-1", "--tool", "search_contacts",
                 "--outcome", "ok", "--kind", "tool.call", "--since", "2000-01-01T00:00:00Z", "--limit", "2")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0, result.output
    assert [(line["seq"], line["principal"], line["payload"]) for line in lines] == [
        (1, "user-1", {"query": "grace 1"}), (3, "user-1", {"query": "grace 3"}),
    ]
    assert set(lines[0]) == {"seq", "ts", "kind", "principal", "tool", "outcome", "latency_ms", "payload",
                             "payload_salt", "payload_hash", "prev_hash", "record_hash", "erased_at",
                             "request_id", "session_hash"}  # fmt: skip


def test_show_until_a_time_before_the_first_record_prints_nothing(tmp_path: Path) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 2))
    result = run("show", "--data-dir", str(tmp_path), "--until", "2000-01-01T00:00:00+02:00")
    assert (result.exit_code, result.output) == (0, "")


def test_show_refuses_a_time_that_is_not_iso_8601(tmp_path: Path) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 1))
    result = run("show", "--data-dir", str(tmp_path), "--since", "yesterday")
    assert result.exit_code == 2
    assert "--since 'yesterday' is not an ISO 8601 time" in result.output


def test_checkpoint_signs_the_newest_record(tmp_path: Path) -> None:
    with_log(tmp_path, lambda log, _: fill(log, 3))
    result = run("checkpoint", "--data-dir", str(tmp_path))
    assert (result.exit_code, result.output) == (0, "signed checkpoint at #3\n")
    assert run("verify", "--data-dir", str(tmp_path)).output.endswith(") covers them all\n")


def test_checkpoint_refuses_a_data_folder_without_the_servers_key(tmp_path: Path) -> None:
    """The database is found (--database-url) but the data folder is not the servers': no new key is made."""
    with_log(tmp_path, lambda log, _: fill(log, 3))
    elsewhere = tmp_path / "elsewhere"
    result = run("checkpoint", "--data-dir", str(elsewhere), "--database-url",
                 f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
    assert result.exit_code == 2
    assert "no audit checkpoint key" in result.output
    assert not elsewhere.exists()
