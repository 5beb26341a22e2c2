"""Helpers for the monitoring tests: a monitored reference app, scraping, the audit log's alerts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import external_idp_args
from tests.support.idp import TestIdentityProvider
from tests.support.serve import CONTACTS_APP, REPO, ServeProcess, server_env

WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789"


def monitored_contacts(tmp: Path, idp: TestIdentityProvider, *args: str, **settings: str) -> ServeProcess:
    """The reference app trusting the test identity provider; ``settings`` become RINGFENCE_* variables."""
    idp_args, env = external_idp_args(idp, introspection=False)
    env.update({f"RINGFENCE_{name.upper()}": value for name, value in settings.items()})
    return ServeProcess(CONTACTS_APP, *idp_args, "--data-dir", str(tmp / "data"), *args, env=env).start(tmp)


def scrape(server: ServeProcess, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset], float]:
    """``GET /metrics`` parsed by prometheus_client: ``{(sample name, labels): value}``."""
    response = httpx.get(server.base_url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def audit_alerts(data_dir: Path, detector: str, timeout: float = 30) -> list[dict]:
    """``ringfence audit show --kind alert.raised``: the alert records of ``detector``, waiting for the first."""
    deadline = time.monotonic() + timeout
    while True:
        shown = subprocess.run([sys.executable, "-m", "ringfence", "audit", "show", "--kind", "alert.raised",
                                "--data-dir", str(data_dir)], capture_output=True, text=True, cwd=REPO,
                               env=server_env(), timeout=60)
        assert shown.returncode == 0, shown.stderr
        records = [json.loads(line) for line in shown.stdout.splitlines()]
        records = [record for record in records if record["outcome"] == detector]
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def wait_for_log(server: ServeProcess, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.logs():
        assert time.monotonic() < deadline, f"{text!r} never appeared in the server log:\n{server.logs()}"
        time.sleep(0.05)
    return server.logs()
