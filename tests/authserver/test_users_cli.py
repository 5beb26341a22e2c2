"""``ringfence users add | list | passwd | remove``: the embedded server's accounts, from the command line.

Passwords come from standard input (never the command line, where ``ps`` would show them); a
refusal is one ``ringfence: error:`` line and exit status 2. Passwords are checked against the data
folder's database with the same code the sign-in page uses (signing in over HTTP with a CLI-made
account is covered by the standalone and PostgreSQL tests).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ringfence.authserver.users import UserStore
from ringfence.store.database import Database
from tests.support.oauth import ringfence_cli

FIRST_PASSWORD = "first-password-123"
SECOND_PASSWORD = "second-password-456"


def users(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return ringfence_cli("users", *args, "--data-dir", str(data_dir), stdin=stdin)


def password_works(data_dir: Path, username: str, password: str) -> bool:
    """What the sign-in page would decide, on the same database."""

    async def check() -> bool:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
        await database.start()
        try:
            return await UserStore(database).authenticate(username, password) is not None
        finally:
            await database.close()

    return asyncio.run(check())


@dataclass
class Session:
    """Everything the module does, in order; the tests check one step each."""

    added: subprocess.CompletedProcess[str]
    too_short: subprocess.CompletedProcess[str]
    first_password_works: bool
    listed: subprocess.CompletedProcess[str]
    duplicate: subprocess.CompletedProcess[str]
    first_password_kept_after_duplicate: bool
    passwd: subprocess.CompletedProcess[str]
    old_password_works_after_passwd: bool
    new_password_works_after_passwd: bool
    removed: subprocess.CompletedProcess[str]
    password_works_after_remove: bool


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    data = tmp_path_factory.mktemp("users")
    other = tmp_path_factory.mktemp("users-short")
    with ThreadPoolExecutor() as pool:  # independent steps side by side: each run starts a Python
        added = pool.submit(users, "add", "alice", "--password-stdin", data_dir=data, stdin=FIRST_PASSWORD + "\n")
        too_short = pool.submit(users, "add", "bob", "--password-stdin", data_dir=other, stdin="short\n")
        assert added.result().returncode == 0, added.result().stderr
        first_works = password_works(data, "alice", FIRST_PASSWORD)
        listed = pool.submit(users, "list", data_dir=data)
        duplicate = pool.submit(users, "add", "alice", "--password-stdin", data_dir=data,
                                stdin="another-password-1\n")
        listed.result(), duplicate.result()
        kept_after_duplicate = password_works(data, "alice", FIRST_PASSWORD)
    passwd = users("passwd", "alice", "--password-stdin", data_dir=data, stdin=SECOND_PASSWORD + "\n")
    old_works = password_works(data, "alice", FIRST_PASSWORD)
    new_works = password_works(data, "alice", SECOND_PASSWORD)
    removed = users("remove", "alice", data_dir=data)
    yield Session(added.result(), too_short.result(), first_works, listed.result(), duplicate.result(),
                  kept_after_duplicate, passwd,
                  old_works, new_works, removed, password_works(data, "alice", SECOND_PASSWORD))


def assert_one_line_refusal(done: subprocess.CompletedProcess[str], says: str) -> None:
    """Exit status 2 and exactly one ``ringfence: error:`` line on stderr, no traceback."""
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ringfence: error: ")
    assert says in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_add_reads_the_password_from_stdin(session: Session) -> None:
    """``users add NAME --password-stdin``: the account exists and that password is its password."""
    assert session.added.stdout.strip() == "added user alice"
    assert session.first_password_works


def test_list_shows_the_users(session: Session) -> None:
    assert session.listed.returncode == 0
    assert session.listed.stdout.split() == ["alice"]


def test_passwd_replaces_the_password(session: Session) -> None:
    """After ``users passwd`` the old password fails and the new one works."""
    assert session.passwd.stdout.strip() == "changed the password of alice"
    assert not session.old_password_works_after_passwd
    assert session.new_password_works_after_passwd


def test_remove_deletes_the_user(session: Session) -> None:
    """After ``users remove`` no password works for the name any more."""
    assert session.removed.stdout.strip() == "removed user alice"
    assert not session.password_works_after_remove


def test_too_short_password_is_refused_in_one_line(session: Session) -> None:
    """OWASP ASVS 2.1.1 / NIST SP 800-63B §5.1.1: a minimum length (10 here)."""
    assert_one_line_refusal(session.too_short, "at least 10 characters")


def test_duplicate_user_is_refused_in_one_line(session: Session) -> None:
    assert_one_line_refusal(session.duplicate, "already exists")
    assert session.first_password_kept_after_duplicate  # the existing account was not overwritten
