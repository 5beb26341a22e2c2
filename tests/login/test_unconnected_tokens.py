"""Provider tokens kept by a sign-in on the way to an app whose consent page is never answered: deleted,
and deleted at GitHub (the stand-in) too, once no app was connected within the hour; an account with an app
connected keeps its tokens, and so do tokens of a sign-in made since. In-process, on real SQLite and
PostgreSQL databases and the real GitHub flow.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ringfence.authserver.login_providers import parse_login_provider
from ringfence.authserver.models import Consent
from ringfence.authserver.provider_tokens import UNCONNECTED_SECONDS, ProviderTokens
from ringfence.authserver.upstream import ProviderGrant, flow_for
from ringfence.authserver.users import UserStore
from ringfence.config import Settings
from ringfence.privacy.purge import Purge, PurgeSchedule
from ringfence.store.database import Database
from tests.support.login_standin import CLIENT, LoginStandIn


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


async def kept_for_two(standin: LoginStandIn, database_url: str, data_dir: Path) -> Kept:
    database = Database(database_url)
    await database.start()
    github = parse_login_provider(f"github,client-id={CLIENT[0]},client-secret-env=STANDIN_GITHUB_SECRET,"
                                  f"allowed-org=acme,github-url={standin.github_url},"
                                  f"github-api-url={standin.github_api_url}")
    flow = flow_for(github, httpx.AsyncClient(), "http://127.0.0.1:1/login/github/callback", 60, frozenset({"repo"}))
    tokens = ProviderTokens(database, data_dir, {"github": flow}, issuer="http://127.0.0.1:1",
                            sign_in_url="http://127.0.0.1:1/login")
    run = uuid.uuid4().hex[:8]  # one PostgreSQL database serves the module's tests
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
    return kept


@pytest.mark.usefixtures("secret")
def test_tokens_of_an_account_with_no_app_connected_an_hour_on_are_deleted_and_revoked_at_github(
        standin: LoginStandIn, database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        kept = await kept_for_two(standin, database_url, tmp_path)
        assert await kept.tokens.forget_unconnected() == 0  # the consent page may still be answered
        assert await kept.tokens.forget_unconnected(time.time() + UNCONNECTED_SECONDS + 5) == 1
        assert await kept.tokens.held(kept.dana) is None and kept.dana_token not in standin.github_tokens
        assert await kept.tokens.held(kept.eve) is not None and kept.eve_token in standin.github_tokens
        await kept.database.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("secret")
def test_tokens_of_a_sign_in_made_since_the_sweep_looked_are_neither_deleted_nor_revoked(
        standin: LoginStandIn, database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        kept = await kept_for_two(standin, database_url, tmp_path)
        cutoff = int(time.time()) - 1  # the sweep's cutoff: the row was kept after it
        assert not await kept.tokens.forget(kept.dana, revoke=True, unless_connected=True, kept_before=cutoff)
        assert await kept.tokens.held(kept.dana) is not None and kept.dana_token in standin.github_tokens
        assert not await kept.tokens.forget(kept.eve, revoke=True, unless_connected=True)  # an app is connected
        assert await kept.tokens.held(kept.eve) is not None and kept.eve_token in standin.github_tokens
        await kept.database.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("secret")
def test_the_servers_purge_schedule_runs_the_sweep_before_each_pass(standin: LoginStandIn, database_url: str,
                                                                     tmp_path: Path) -> None:
    async def scenario() -> None:
        kept = await kept_for_two(standin, database_url, tmp_path)
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
        await kept.database.close()

    asyncio.run(scenario())
