"""Commands run where there is no ringfence data refuse with one clear line and create nothing there:
no empty database (which `audit verify` would then call intact), no key (a second key ring), no
log. `serve` checks that the app file exists before it writes anything."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_ringfence_many
from tests.support.serve import CONTACTS_APP

# Every command that reads or records a deployment's data (users add alone may start one).
COMMANDS = {
    "users_list": ["users", "list"],
    "users_remove": ["users", "remove", "owner"],
    "keys_rotate": ["keys", "rotate"],
    "audit_verify": ["audit", "verify"],
    "audit_show": ["audit", "show"],
    "audit_checkpoint": ["audit", "checkpoint"],
    "user_export": ["user", "export", CONTACTS_APP, "--username", "owner"],
    "user_delete": ["user", "delete", CONTACTS_APP, "--username", "owner"],
    "purge": ["purge", CONTACTS_APP],
    "db_current": ["db", "current"],
    "db_check": ["db", "check"],
}


def test_commands_in_a_folder_without_data_refuse_and_create_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "wrong-folder"
    empty.mkdir()
    runs = {name: ([*args, "--data-dir", str(empty)], {}) for name, args in COMMANDS.items()}
    (tmp_path / "runs").mkdir()
    outcomes = run_ringfence_many(runs, tmp_path / "runs")
    for name, outcome in outcomes.items():
        assert outcome.returncode == 2, (name, outcome)
        assert f"no ringfence data in {empty.resolve()}" in outcome.stderr, (name, outcome.stderr)
        assert "Traceback" not in outcome.stderr, name
    assert list(empty.iterdir()) == []  # no database, no key, no log file was made


def test_a_database_url_naming_no_database_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere.db"
    url = f"sqlite+aiosqlite:///{missing}"
    runs = {name: ([*args, "--data-dir", str(tmp_path / "data"), "--database-url", url], {})
            for name, args in COMMANDS.items() if name != "keys_rotate"}  # keys rotate looks for its keys first
    (tmp_path / "runs").mkdir()
    for name, outcome in run_ringfence_many(runs, tmp_path / "runs").items():
        assert outcome.returncode == 2, (name, outcome)
        assert f"there is no database at {missing}" in outcome.stderr, (name, outcome.stderr)
    assert not missing.exists() and not (tmp_path / "data").exists()


def test_serve_checks_the_app_file_before_writing_any_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "runs").mkdir()
    outcome = run_ringfence_many({"serve": (["serve", str(tmp_path / "no-such-app.py"), "--data-dir", str(data)], {})},
                                 tmp_path / "runs")["serve"]
    assert outcome.returncode == 2, outcome
    assert "no-such-app.py" in outcome.stderr and "Traceback" not in outcome.stderr
    assert not data.exists()  # no pseudonym key, no database, no folder
