"""The data folder of a real `ringfence serve` is private to its account: the folder 0700 and every file in
it 0600, SQLite's write-ahead log and shared-memory files included, whatever the umask; a folder an
earlier version left readable is tightened at start-up, with a warning."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.oauth import LOOPBACK_REDIRECT, add_user, register, ringfence_cli
from tests.support.serve import CONTACTS_APP, ServeProcess


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Child processes started inside inherit ``mask``."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` (and itself, as ".") with its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def readable_by_others(folder: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(folder).items() if mode & 0o077}


def serve_and_register(data: Path, logs: Path) -> str:
    """Start the reference app with its embedded authorization server (its log kept outside the data
    folder), register a client (a write while it runs), stop it; its log."""
    server = ServeProcess(CONTACTS_APP, "--data-dir", str(data)).start(logs)
    try:
        assert register(server.base_url, redirect_uris=[LOOPBACK_REDIRECT]).status_code == 201
        assert {"ringfence.db", "ringfence.db-wal", "ringfence.db-shm"} <= {p.name for p in data.iterdir()}
        assert readable_by_others(data) == {}  # while running: the WAL and SHM files exist now
    finally:
        server.stop()
    return server.logs()


def test_a_new_data_folder_is_0700_with_every_file_0600_under_umask_022(tmp_path: Path) -> None:
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    with umask(0o022):
        serve_and_register(data, logs)
    found = modes(data)
    assert found["."] == 0o700
    assert found["ringfence.db"] == 0o600 and found["pseudonym.key"] == 0o600
    assert readable_by_others(data) == {}


def test_a_data_folder_left_readable_is_made_private_at_start_up(tmp_path: Path) -> None:
    """As an earlier version left it: ringfence.db 0644 in a 0755 folder (keys were already 0600)."""
    data, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    with umask(0o022):
        serve_and_register(data, logs)
        data.chmod(0o755)
        for path in data.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert readable_by_others(data)
        log = serve_and_register(data, logs)
    assert readable_by_others(data) == {}
    assert "made" in log and "private to this account" in log


def test_files_in_the_data_folder_that_are_not_ringfences_keep_their_modes(tmp_path: Path) -> None:
    """``--data-dir .`` in a project: the folder becomes 0700 (others cannot reach anything in it),
    ringfence's own files 0600, and the project's files and folders are not rewritten."""
    data, logs = tmp_path / "project", tmp_path / "logs"
    logs.mkdir()
    (data / "docs").mkdir(parents=True)
    (data / "README.md").write_text("hello")
    (data / "docs" / "guide.md").write_text("guide")
    for path, mode in ((data / "docs", 0o755), (data / "README.md", 0o644), (data / "docs" / "guide.md", 0o644)):
        path.chmod(mode)
    with umask(0o022):
        server = ServeProcess(CONTACTS_APP, "--data-dir", str(data)).start(logs)
        server.stop()
    found = modes(data)
    assert found["."] == 0o700 and found["ringfence.db"] == 0o600 and found["pseudonym.key"] == 0o600
    assert (found["README.md"], found["docs"], found["docs/guide.md"]) == (0o644, 0o755, 0o644)


def test_commands_that_create_the_database_create_it_0600_under_umask_022(tmp_path: Path) -> None:
    """`users add` before the first start and `db upgrade` create the database; it is never, even
    for a moment, readable by others (no server start tightens it afterwards)."""
    with umask(0o022):
        add_user(tmp_path / "users", "alice", "correct horse battery staple")
        upgraded = ringfence_cli("db", "upgrade", "--data-dir", str(tmp_path / "db"))
    assert upgraded.returncode == 0, upgraded.stderr
    for folder in (tmp_path / "users", tmp_path / "db"):
        assert modes(folder)["."] == 0o700 and modes(folder)["ringfence.db"] == 0o600
        assert readable_by_others(folder) == {}
