"""Shared fixtures: the stand-in identity provider, real `ringfence serve` processes, and a browser page
with a second local origin (a client's loopback callback, a third-party page)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ringfence.app import App
from ringfence.loader import load_app
from tests.support.browser import LocalSite, chromium
from tests.support.idp import INTROSPECTION_CLIENT, TestIdentityProvider
from tests.support.serve import CONTACTS_APP, ServeProcess, served

if TYPE_CHECKING:
    from playwright.sync_api import Page

POSTGRES_ADMIN_URL = os.environ.get("RINGFENCE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    """A second local origin: a client's loopback callback, or a third party's page."""
    local = LocalSite().start()
    yield local
    local.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    """A page of a fresh headless Chromium, 800 by 1000 pixels, waiting at most 15 s for anything."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 800, "height": 1000})
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()


@pytest.fixture(scope="session")
def idp() -> Iterator[TestIdentityProvider]:
    provider = TestIdentityProvider()
    provider.start()
    yield provider
    provider.stop()


def external_idp_args(idp: TestIdentityProvider, *, introspection: bool = True) -> tuple[list[str], dict[str, str]]:
    args = ["--issuer", idp.issuer, "--jwks-url", idp.jwks_url]
    env: dict[str, str] = {}
    if introspection:
        args += ["--introspection-url", idp.introspection_url, "--introspection-client-id", INTROSPECTION_CLIENT[0]]
        env["RINGFENCE_INTROSPECTION_CLIENT_SECRET"] = INTROSPECTION_CLIENT[1]
    return args, env


@contextmanager
def served_trusting(idp: TestIdentityProvider, data_dir: Path, *args: str, target: str = CONTACTS_APP,
                    introspection: bool = True, env: dict[str, str] | None = None,
                    log_dir: Path | None = None) -> Iterator[ServeProcess]:
    """``ringfence serve TARGET --data-dir DATA_DIR ARGS...`` trusting the test identity provider, running
    for the ``with`` block; its log in ``log_dir`` (by default ``data_dir``)."""
    idp_args, idp_env = external_idp_args(idp, introspection=introspection)
    with served(target, *idp_args, "--data-dir", str(data_dir), *args, env={**idp_env, **(env or {})},
                log_dir=log_dir or data_dir) as server:
        yield server


@pytest.fixture(scope="module")
def contacts(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The reference app on SQLite, trusting the test identity provider."""
    with served_trusting(idp, tmp_path_factory.mktemp("contacts")) as server:
        yield server


@pytest.fixture(scope="session")
def contacts_app() -> App:
    """The reference app, loaded once: its module declares tables, which a second load would redefine."""
    return load_app(CONTACTS_APP)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, as an async SQLAlchemy URL; dropped afterwards."""
    import asyncio
    import uuid

    import asyncpg

    name = f"ringfence_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for these tests (scripts/services starts it): {exc}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def serve_source(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory, name: str,
                 source: str) -> Iterator[ServeProcess]:
    """``ringfence serve`` of an app written from ``source`` (as ``<name>_app.py``), trusting the test IdP."""
    data = tmp_path_factory.mktemp(name)
    (data / f"{name}_app.py").write_text(source)
    with served_trusting(idp, data, target=str(data / f"{name}_app.py")) as server:
        yield server
