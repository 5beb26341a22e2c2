"""Provider tokens kept by a sign-in on the way to an app whose consent page is never answered: deleted,
and deleted at GitHub (the stand-in) too, once no app was connected within the hour; an account with an app
connected keeps its tokens. In-process, on a real SQLite database and the real GitHub flow.
"""

from __future__ import annotations

import asyncio
import time
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


async def kept_for_two(standin: LoginStandIn, data_dir: Path) -> tuple[ProviderTokens, Database, int, int]:
    """Dana (no app connected) and Eve (one app) each hold a live GitHub token kept by ``ProviderTokens``."""
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
    await database.start()
    github = parse_login_provider(f"github,client-id={CLIENT[0]},client-secret-env=STANDIN_GITHUB_SECRET,"
                                  f"allowed-org=acme,github-url={standin.github_url},"
                                  f"github-api-url={standin.github_api_url}")
    flow = flow_for(github, httpx.AsyncClient(), "http://127.0.0.1:1/login/github/callback", 60, frozenset({"repo"}))
    tokens = ProviderTokens(database, data_dir, {"github": flow}, issuer="http://127.0.0.1:1",
                            sign_in_url="http://127.0.0.1:1/login")
    users = UserStore(database)
    dana, eve = await users.add("dana", "correct horse battery"), await users.add("eve", "correct horse battery")
    async with database.session() as db:
        db.add(Consent(user_id=eve.id, client_id="repos-client", client_name="Repos client", scope="repos:read",
                       updated_at=int(time.time())))
    for user, token in ((dana, "gho_dana_unconnected"), (eve, "gho_eve_connected")):
        standin.github_tokens[token] = "repo"
        await tokens.keep(user.id, "github", ProviderGrant(token, None, None, frozenset({"repo"})))
    return tokens, database, dana.id, eve.id


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_GITHUB_SECRET", CLIENT[1])


@pytest.mark.usefixtures("secret")
def test_tokens_of_an_account_with_no_app_connected_an_hour_on_are_deleted_and_revoked_at_github(
        standin: LoginStandIn, tmp_path: Path) -> None:
    async def scenario() -> None:
        tokens, database, dana, eve = await kept_for_two(standin, tmp_path)
        assert await tokens.forget_unconnected() == 0  # the consent page may still be answered
        assert await tokens.forget_unconnected(time.time() + UNCONNECTED_SECONDS + 5) == 1
        assert await tokens.held(dana) is None and "gho_dana_unconnected" not in standin.github_tokens
        assert await tokens.held(eve) is not None and "gho_eve_connected" in standin.github_tokens
        await database.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("secret")
def test_the_servers_purge_schedule_runs_the_sweep_before_each_pass(standin: LoginStandIn, tmp_path: Path) -> None:
    async def scenario() -> None:
        tokens, database, dana, _ = await kept_for_two(standin, tmp_path)
        later = time.time() + UNCONNECTED_SECONDS + 5
        schedule = PurgeSchedule(Purge(database, tmp_path, Settings(data_dir=tmp_path)), interval=3600,
                                 first_delay=0, sweeps=[lambda: tokens.forget_unconnected(later)])
        schedule.start()
        for _ in range(100):
            if await tokens.held(dana) is None:
                break
            await asyncio.sleep(0.05)
        await schedule.stop()
        assert await tokens.held(dana) is None and "gho_dana_unconnected" not in standin.github_tokens
        await database.close()

    asyncio.run(scenario())
