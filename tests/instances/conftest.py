"""Two ``ringfence serve`` instances behind one public URL, sharing PostgreSQL, Redis and the data folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import external_idp_args
from tests.support.faults import TcpProxy
from tests.support.idp import TestIdentityProvider
from tests.support.instances import (
    NOTES_APP,
    REDIS_URL,
    clear_rate_limits,
    instances,
    start_in_turn,
)
from tests.support.oauth import Account, add_user, server_errors
from tests.support.serve import CONTACTS_APP, ServeProcess


@dataclass
class Deployment:
    """The instances, the load balancer at their public URL, and where their state lives."""

    balancer: TcpProxy
    servers: list[ServeProcess]
    database_url: str
    data_dir: Path
    account: Account | None = None

    @property
    def public_url(self) -> str:
        return f"http://{self.balancer.address}"

    @property
    def resource(self) -> str:
        return self.public_url + "/mcp"

    def server_errors(self) -> list[str]:
        """Any 5xx answer or traceback in any instance's log."""
        return [line for server in self.servers for line in server_errors(server.logs())]

    def stop(self) -> None:
        for server in self.servers:
            server.interrupt()
        for server in self.servers:
            server.stop()
        self.balancer.stop()


def deploy(target: str, tmp: Path, database_url: str, *args: str, count: int = 2,
           env: dict[str, str] | None = None, account: Account | None = None) -> Deployment:
    data_dir, logs = tmp / "data", tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    balancer, servers = instances(target, count, data_dir, "--database-url", database_url,
                                  "--redis-url", REDIS_URL, *args, env=env)
    clear_rate_limits()
    balancer.start()
    try:
        start_in_turn(logs, servers)
    except BaseException:
        balancer.stop()
        raise
    return Deployment(balancer, servers, database_url, data_dir, account)


@pytest.fixture(scope="module")
def contacts_pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The reference app twice, with the embedded authorization server (refresh tokens, confirmations)."""
    tmp = tmp_path_factory.mktemp("contacts-pair")
    account = add_user(tmp / "data", "sam", "two-instances-password", "--database-url", postgres_url)
    deployment = deploy(CONTACTS_APP, tmp, postgres_url, account=account)
    yield deployment
    deployment.stop()
    assert deployment.server_errors() == []


def notes_deployment(idp: TestIdentityProvider, tmp: Path, database_url: str, count: int = 2) -> Deployment:
    """The notes app (tight per-principal budget) on ``count`` instances, trusting the test identity provider."""
    args, env = external_idp_args(idp, introspection=False)
    return deploy(NOTES_APP, tmp, database_url, *args, count=count, env=env)


@pytest.fixture(scope="module")
def notes_pair(idp: TestIdentityProvider, postgres_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = notes_deployment(idp, tmp_path_factory.mktemp("notes-pair"), postgres_url)
    yield deployment
    deployment.stop()
    assert deployment.server_errors() == []
