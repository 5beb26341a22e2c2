"""A bounded load on two instances, with rate limits on, and one instance killed mid-load (issue #6, item 7).

Sixteen clients make a fixed number of calls each, spread over both instances, and stop by
themselves. Every answer is 200 or 429 (never a 5xx), every acknowledged call has its note and its
``tool.call`` audit record, and the chain verifies, also when one instance is SIGKILLed mid-load.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.instances.conftest import Deployment, notes_deployment
from tests.instances.notes_app import PER_PRINCIPAL
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.instances import Caller, audit_verify, audited_calls, notes
from tests.support.oauth import server_errors

pytestmark = pytest.mark.postgres

CLIENTS = 16
CALLS_EACH = 125  # 2,000 calls: 960 within the budgets, 1,040 refused with 429


def callers_for(deployment: Deployment, idp: TestIdentityProvider) -> list[Caller]:
    """One principal per client, each sending its calls to both instances in turn (as a balancer would)."""
    urls = [server.mcp_url for server in deployment.servers]
    callers = []
    for index in range(CLIENTS):
        subject = new_subject()
        token = idp.token(deployment.resource, sub=subject, scope="notes:write")
        callers.append(Caller(subject, token, urls[index % 2:] + urls[:index % 2]))
    return callers


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the module's database: the audit checkpoints are signed with the key in it."""
    return tmp_path_factory.mktemp("load")


@pytest.fixture
def deployment(idp: TestIdentityProvider, postgres_url: str, state_dir: Path) -> Iterator[Deployment]:
    deployment = notes_deployment(idp, state_dir, postgres_url)
    yield deployment
    deployment.stop()


def test_load_with_rate_limits_answers_only_200_or_429_and_loses_no_audit_record(deployment, idp):
    callers = callers_for(deployment, idp)

    async def load() -> None:
        await asyncio.gather(*(caller.add_notes(CALLS_EACH) for caller in callers))

    asyncio.run(load())
    for caller in callers:  # the budget is exact: one principal's 60 calls a day, shared by both instances
        assert caller.statuses() == {200: PER_PRINCIPAL, 429: CALLS_EACH - PER_PRINCIPAL}, caller.statuses()
        assert len(caller.acknowledged()) == PER_PRINCIPAL
    audited = audited_calls(deployment.database_url, deployment.data_dir)
    stored = notes(deployment.database_url)
    for caller in callers:
        assert audited[caller.name] == PER_PRINCIPAL
        assert set(caller.acknowledged()) <= stored
    total = CLIENTS * PER_PRINCIPAL
    assert sum(audited.values()) == total
    assert audit_verify(deployment.database_url, deployment.data_dir).startswith("audit log intact: records #1 to #")
    assert deployment.server_errors() == []


def test_killing_one_instance_mid_load_loses_no_acknowledged_record(deployment, idp):
    """SIGKILL one of two instances mid-load: every call answered as done has its note and audit record."""
    callers = callers_for(deployment, idp)
    victim = deployment.servers[1]
    killed_after: list[int] = []

    def acknowledged() -> int:
        return sum(len(caller.acknowledged()) for caller in callers)

    async def kill_mid_load() -> None:
        while acknowledged() < 200:
            await asyncio.sleep(0.005)
        assert victim.process is not None
        victim.process.kill()  # SIGKILL: no shutdown, no flush, whatever it was doing
        killed_after.append(acknowledged())

    async def load() -> None:
        await asyncio.gather(kill_mid_load(), *(caller.add_notes(40) for caller in callers))

    asyncio.run(load())
    assert killed_after and victim.process is not None and victim.process.poll() is not None
    statuses = Counter(status for caller in callers for status in caller.statuses().elements())
    assert set(statuses) <= {200, None}, statuses  # None: the killed instance's calls never answered
    assert statuses[None] > 0 and acknowledged() > killed_after[0]  # the survivor kept serving
    audited = audited_calls(deployment.database_url, deployment.data_dir)
    stored = notes(deployment.database_url)
    for caller in callers:
        assert audited[caller.name] >= len(caller.acknowledged())
        assert set(caller.acknowledged()) <= stored
    assert audit_verify(deployment.database_url, deployment.data_dir).startswith("audit log intact: records #1 to #")
    assert server_errors(deployment.servers[0].logs()) == []
