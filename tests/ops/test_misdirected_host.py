"""A wrong port in --public-url: a real `ringfence serve` answers 421 to the address it is reached at,
and says why in its log once, at the first 421, with the host received and the hosts expected."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.conftest import external_idp_args
from tests.support.idp import TestIdentityProvider, free_port
from tests.support.serve import CONTACTS_APP, ServeProcess


def wait_for_answers(server: ServeProcess, timeout: float = 20) -> httpx.Response:
    """The first answer to GET / at the address the server listens on (its public URL names another)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None and server.process.poll() is None, server.logs()
        try:
            return httpx.get(server.base_url + "/", timeout=1)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"no answer:\n{server.logs()}")


def test_a_wrong_public_url_port_logs_the_expected_and_received_host_once(
    idp: TestIdentityProvider, tmp_path: Path,
) -> None:
    wrong = free_port()
    args, env = external_idp_args(idp)
    server = ServeProcess(CONTACTS_APP, *args, "--public-url", f"http://127.0.0.1:{wrong}",
                          "--data-dir", str(tmp_path), env=env).launch(tmp_path)
    try:
        answers = [wait_for_answers(server)]
        answers += [httpx.post(server.mcp_url, json={}, timeout=5) for _ in range(3)]
        answers.append(httpx.get(server.base_url + "/", headers={"host": "other.example"}, timeout=5))
    finally:
        server.stop()
    assert [answer.status_code for answer in answers] == [421] * 5
    explained = [json.loads(line)["message"] for line in server.logs().splitlines()
                 if "answered 421" in line]
    assert len(explained) == 1, server.logs()  # the first 421 only, not one line per request
    assert f"host '127.0.0.1:{server.port}'" in explained[0]
    assert f"127.0.0.1:{wrong}" in explained[0] and "--public-url" in explained[0]
