"""Data scoped to the caller on PostgreSQL (#17): row-level security keeps raw SQL through the session
inside the caller's rows, connected as the tests' superuser (ringfence switches each transaction to
a role without BYPASSRLS) or as the tables' owner (FORCE ROW LEVEL SECURITY); a user that bypasses
RLS and cannot switch is refused at start-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POSTGRES_ADMIN_URL
from tests.owned.conftest import User, count_anonymously, serve_notes
from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import Client
from tests.support.serve import REPO, server_env

pytestmark = pytest.mark.postgres

NOTES_APP = str(REPO / "tests" / "owned" / "apps.py")


def admin(*statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def database_of_its_own(*options: str) -> Iterator[str]:
    """A login role (no superuser; ``options`` such as BYPASSRLS) and a database it owns, as an async URL.
    Both dropped afterwards."""
    name = f"ringfence_test_{uuid.uuid4().hex[:12]}"
    admin(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER {" ".join(options)}', f'CREATE DATABASE "{name}" OWNER "{name}"')
    host = POSTGRES_ADMIN_URL.rsplit("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{name}@{host}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture(scope="module", params=["superuser", "owner"])
def notes(request: pytest.FixtureRequest, idp: TestIdentityProvider,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The careless notes app on PostgreSQL, connected as the superuser ``postgres`` (how the tests
    and the README connect) or as the owner of a database of its own (no superuser, no BYPASSRLS)."""
    with ExitStack() as stack:
        url = (request.getfixturevalue("postgres_url") if request.param == "superuser"
               else stack.enter_context(database_of_its_own("NOBYPASSRLS")))
        yield stack.enter_context(serve_notes(idp, tmp_path_factory.mktemp("rls"), url))


def test_raw_select_finds_only_the_callers_rows(both: tuple[User, User, int]) -> None:
    """Fails without the policy in force: as the superuser, without the role switch, every row shows."""
    alice, bob, _ = both
    assert [row["owner"] for row in alice.call("raw_select")] == [alice.subject, alice.subject]
    assert [row["text"] for row in bob.call("raw_select")] == ["bob 1", "bob 2"]


def test_raw_update_and_delete_reach_only_the_callers_rows(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    assert alice.call("raw_update", text_="raw") == 2
    assert alice.call("raw_delete") == 2
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]


def test_raw_insert_for_someone_else_is_refused_by_the_policy(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    alice.refused("raw_insert", text_="forged", owner=bob.subject)
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]
    assert alice.call("raw_insert", text_="own", owner=alice.subject) == "added"
    assert ("own", alice.subject) in alice.notes()


def test_raw_sql_of_an_anonymous_caller_finds_no_owned_rows(both: tuple[User, User, int], notes: Client) -> None:
    assert count_anonymously(notes) == {"orm": 0, "raw": 0}


def test_a_user_that_bypasses_rls_and_cannot_switch_role_is_refused_at_start_up(tmp_path: Path) -> None:
    """No superuser, but BYPASSRLS and no right to create or join a role: RLS cannot be enforced, so
    `ringfence serve` stops with one line instead of serving owned tables unguarded."""
    with database_of_its_own("BYPASSRLS") as url:
        run = subprocess.run([sys.executable, "-m", "ringfence", "serve", NOTES_APP, "--data-dir", str(tmp_path),
                              "--database-url", url], cwd=REPO, env=server_env(), capture_output=True, text=True,
                             timeout=120)
    assert run.returncode == 2, run.stderr
    assert "cannot enforce row-level security on the owned tables" in run.stderr
    assert "Traceback" not in run.stderr
