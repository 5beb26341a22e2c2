"""Provider tokens kept by a sign-in on the way to an app whose consent page is never answered: deleted,
and deleted at GitHub (the stand-in) too, once no app was connected within the hour; an account with an app
connected keeps its tokens, and so do tokens of a sign-in made since. In-process on real SQLite and
PostgreSQL databases with the real GitHub flow, and end to end: a real ``ringfence serve`` whose purge
schedule sweeps a token left by an abandoned consent page.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from ringfence.authserver.login_providers import parse_login_provider
from ringfence.authserver.models import Consent, ProviderTokenRecord
from ringfence.authserver.provider_tokens import UNCONNECTED_SECONDS, ProviderTokens
from ringfence.authserver.upstream import ProviderGrant, flow_for
from ringfence.authserver.users import UserStore
from ringfence.config import Settings
from ringfence.privacy.purge import Purge, PurgeSchedule
from ringfence.store.database import Database
from tests.support.idp import free_port
from tests.support.login import to_consent_page
from tests.support.login_standin import CLIENT, LoginStandIn
from tests.support.oauth import start_embedded
from tests.support.serve import ServeProcess

GITHUB_APP = str(Path(__file__).with_name("github_app.py"))


@dataclass
class Kept:
    """Dana (no app connected) and Eve (one app), each with a live GitHub token kept by ``tokens``."""

    tokens: ProviderTokens
    database: Database
    dana: int
    eve: int
    dana_token: str
    eve_token: str


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_GITHUB_SECRET", CLIENT[1])


def github_spec(standin: LoginStandIn) -> str:
    return (f"github,client-id={CLIENT[0]},client-secret-env=STANDIN_GITHUB_SECRET,allowed-org=acme,"
            f"github-url={standin.github_url},github-api-url={standin.github_api_url}")


@asynccontextmanager
async def kept_for_two(standin: LoginStandIn, database_url: str, data_dir: Path) -> AsyncIterator[Kept]:
    database = Database(database_url)
    await database.start()
    async with database.session() as db:  # the module's PostgreSQL database: no token of an earlier test
        await db.execute(delete(ProviderTokenRecord))
    async with httpx.AsyncClient() as http:
        flow = flow_for(parse_login_provider(github_spec(standin)), http, "http://127.0.0.1:1/login/github/callback",
                        60, frozenset({"repo"}))
        tokens = ProviderTokens(database, data_dir, {"github": flow}, issuer="http://127.0.0.1:1",
                                sign_in_url="http://127.0.0.1:1/login")
        run = uuid.uuid4().hex[:8]
        users = UserStore(database)
        dana = await users.add(f"dana-{run}", "correct horse battery")
        eve = await users.add(f"eve-{run}", "correct horse battery")
        async with database.session() as db:
            db.add(Consent(user_id=eve.id, client_id="repos-client", client_name="Repos client", scope="repos:read",
                           updated_at=int(time.time())))
        kept = Kept(tokens, database, dana.id, eve.id, f"gho_dana_{run}", f"gho_eve_{run}")
        for user_id, token in ((dana.id, kept.dana_token), (eve.id, kept.eve_token)):
            standin.github_tokens[token] = "repo"
            await tokens.keep(user_id, "github", ProviderGrant(token, None, None, frozenset({"repo"})))
        try:
            yield kept
        finally:
            await database.close()


@pytest.mark.usefixtures("secret")
def test_tokens_of_an_account_with_no_app_connected_an_hour_on_are_deleted_and_revoked_at_github(
        standin: LoginStandIn, database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kept_for_two(standin, database_url, tmp_path) as kept:
            assert await kept.tokens.forget_unconnected() == 0  # the consent page may still be answered
            assert await kept.tokens.forget_unconnected(time.time() + UNCONNECTED_SECONDS + 5) == 1
            assert await kept.tokens.held(kept.dana) is None and kept.dana_token not in standin.github_tokens
            assert await kept.tokens.held(kept.eve) is not None and kept.eve_token in standin.github_tokens

    asyncio.run(scenario())


@pytest.mark.usefixtures("secret")
def test_tokens_of_a_sign_in_made_since_the_sweep_looked_are_neither_deleted_nor_revoked(
        standin: LoginStandIn, database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kept_for_two(standin, database_url, tmp_path) as kept:
            assert await kept.tokens.forget_unconnected() == 0  # its cutoff is an hour before the row was kept
            assert await kept.tokens.held(kept.dana) is not None and kept.dana_token in standin.github_tokens
            assert not await kept.tokens.forget(kept.eve, revoke=True, unless_connected=True)  # an app is connected
            assert await kept.tokens.held(kept.eve) is not None and kept.eve_token in standin.github_tokens

    asyncio.run(scenario())


@pytest.mark.usefixtures("secret")
def test_a_purge_schedule_runs_its_sweeps_after_each_pass(standin: LoginStandIn, database_url: str,
                                                          tmp_path: Path) -> None:
    async def scenario() -> None:
        async with kept_for_two(standin, database_url, tmp_path) as kept:
            later = time.time() + UNCONNECTED_SECONDS + 5
            settings = Settings(data_dir=tmp_path, database_url=database_url)
            schedule = PurgeSchedule(Purge(kept.database, tmp_path, settings), interval=3600, first_delay=0,
                                     sweeps=[lambda: kept.tokens.forget_unconnected(later)])
            schedule.start()
            for _ in range(100):
                if await kept.tokens.held(kept.dana) is None:
                    break
                await asyncio.sleep(0.05)
            await schedule.stop()
            assert await kept.tokens.held(kept.dana) is None and kept.dana_token not in standin.github_tokens

    asyncio.run(scenario())


def test_the_server_sweeps_the_github_token_of_a_consent_page_left_unanswered(standin: LoginStandIn,
                                                                               tmp_path: Path) -> None:
    env = {"STANDIN_GITHUB_SECRET": CLIENT[1], "GITHUB_API": standin.github_api_url}
    port = free_port()
    server = start_embedded(tmp_path, "--login-provider", github_spec(standin), target=GITHUB_APP, port=port, env=env)
    try:
        standin.be(github_id=8686, login="gail")
        before = set(standin.github_tokens)
        to_consent_page(server, standin.issuer, "gail", "Abandoned repos client")  # and gail closes the page
        (token,) = set(standin.github_tokens) - before
    finally:
        server.stop()
    with sqlite3.connect(server.database_file) as db:  # as if the sign-in were two hours old
        db.execute("UPDATE ringfence_provider_tokens SET created_at = created_at - 7200")
    restarted = ServeProcess(GITHUB_APP, "--login-provider", github_spec(standin), "--data-dir", str(tmp_path),
                             env=env, port=port).start(tmp_path)
    try:
        swept = "deleted the login-provider tokens of 1 accounts that connected no app"
        deadline = time.monotonic() + 40  # the first purge pass comes 10 s after start
        # The pass revokes the token at the provider, then logs what it did: wait for both.
        while (token in standin.github_tokens or swept not in restarted.logs()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert token not in standin.github_tokens
        assert swept in restarted.logs()
    finally:
        restarted.stop()
    with sqlite3.connect(server.database_file) as db:
        assert db.execute("SELECT count(*) FROM ringfence_provider_tokens").fetchone() == (0,)
