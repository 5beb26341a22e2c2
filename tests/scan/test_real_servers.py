"""``ringfence scan`` on servers it was not written against: two built with the official MCP SDK the way
tutorials build them (tests/scan/sdk_servers.py), each finding checked against the server's real behaviour,
and the reference app served by ringfence, which must pass."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ringfence.review.report import Report
from ringfence.review.scan.runner import scan
from tests.support.idp import free_port
from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, start_embedded
from tests.support.serve import MCP_ACCEPT, REPO, server_env

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "scan-tests", "version": "0"}}}


class SdkProcess:
    """``python -m uvicorn --factory tests.scan.sdk_servers:NAME`` on a free loopback port."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.port = free_port()
        self.mcp_url = f"http://127.0.0.1:{self.port}/mcp"
        self.issuer = f"http://127.0.0.1:{free_port()}"  # advertised; nothing listens there
        self.log = log_dir / f"{name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", f"tests.scan.sdk_servers:{name}", "--host",
                 "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                cwd=REPO, env=server_env({"SCAN_SDK_PORT": str(self.port), "SCAN_SDK_ISSUER": self.issuer}),
                stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> SdkProcess:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(self.mcp_url, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the SDK server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def initialize(self, token: str | None = None, **params: str) -> httpx.Response:
        headers = {"accept": MCP_ACCEPT, "content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return httpx.post(self.mcp_url, json=INITIALIZE, headers=headers, params=params, timeout=10)


def _segment(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def unsigned(claims: dict) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def signed_by_nobody(claims: dict) -> str:
    """A JWT whose signature no key of any issuer made (random bytes)."""
    return f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(claims)}.{'A' * 342}"


def failed(report: Report) -> dict[str, str]:
    return {finding.check.id: finding.severity for finding in report.failures}


def shown(report: Report) -> str:
    return "\n".join(f"{f.check.id} {f.outcome} {f.severity}: {f.message}" for f in report.findings
                     if f.outcome != "pass")


@pytest.fixture(scope="module")
def sdk_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SdkProcess]]:
    folder = tmp_path_factory.mktemp("sdk")
    servers = {name: SdkProcess(name, folder) for name in ("insecure_notes", "apps_sdk_pizzaz")}
    try:
        yield {name: server.wait_ready() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def insecure(sdk_servers: dict[str, SdkProcess]) -> SdkProcess:
    return sdk_servers["insecure_notes"]


def read_token(server: SdkProcess) -> str:
    return signed_by_nobody({"sub": "user-1", "scope": "notes:read", "aud": server.mcp_url,
                             "exp": int(time.time()) + 600})


def test_a_verifier_that_skips_the_signature_is_caught_and_each_finding_is_real(insecure: SdkProcess) -> None:
    report = scan(insecure.mcp_url)
    found = failed(report)
    claims = {"sub": "mallory", "scope": "notes:read", "exp": int(time.time()) + 600}
    # SC302: unsigned tokens are accepted (the test sends one itself).
    assert found.get("SC302") == "critical", shown(report)
    assert insecure.initialize(unsigned({**claims, "aud": insecure.mcp_url})).status_code == 200
    # SC303: a signature no key made is accepted.
    assert found.get("SC303") == "critical", shown(report)
    assert insecure.initialize(signed_by_nobody({**claims, "aud": insecure.mcp_url})).status_code == 200
    # SC306: a token for another audience is accepted (no validate_token_resource, verifier ignores aud).
    assert found.get("SC306") == "critical", shown(report)
    assert insecure.initialize(signed_by_nobody({**claims, "aud": "https://other.example/mcp"})).status_code == 200
    # SC305 passes: the SDK's BearerAuthBackend refuses a token past expires_at.
    assert "SC305" not in found
    assert insecure.initialize(signed_by_nobody({**claims, "exp": int(time.time()) - 60})).status_code == 401
    # SC203 and SC204: the SDK's challenge has no scope= and says error= without credentials.
    challenge = insecure.initialize().headers["www-authenticate"]
    assert found.get("SC203") == "medium" and "scope=" not in challenge
    assert found.get("SC204") == "low" and 'error="invalid_token"' in challenge
    # SC102 and SC110: the SDK serves only the path form of the metadata; the issuer serves nothing.
    assert found.get("SC102") == "low" and found.get("SC110") == "high"
    assert httpx.get(insecure.mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource")).status_code == 404


def test_a_token_in_the_query_string_is_not_reported_when_the_sdk_ignores_it(insecure: SdkProcess) -> None:
    """The SDK reads tokens only from the Authorization header: with ?access_token= it answers exactly as it
    answers a request without credentials (its anonymous challenge carries error=invalid_token, SC204)."""
    anonymous = insecure.initialize()
    in_query = insecure.initialize(access_token=read_token(insecure))
    assert (in_query.status_code, in_query.headers["www-authenticate"]) == (401, anonymous.headers["www-authenticate"])
    report = scan(insecure.mcp_url)
    assert "SC307" not in failed(report), shown(report)


def test_with_a_token_the_unenforced_tool_scopes_and_missing_hints_are_found(insecure: SdkProcess) -> None:
    token = read_token(insecure)
    report = scan(insecure.mcp_url, token=token)
    found = failed(report)
    # SC402: delete_note declares notes:write, and a notes:read token reaches its argument validation.
    assert found.get("SC402") == "high", shown(report)
    headers = {"accept": MCP_ACCEPT, "content-type": "application/json", "authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        session = http.post(insecure.mcp_url, json=INITIALIZE).headers["mcp-session-id"]
        http.headers.update({"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"})
        http.post(insecure.mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        deleted = http.post(insecure.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                    "params": {"name": "delete_note", "arguments": {"note_id": 1}}})
    assert deleted.status_code == 200 and "deleted 1" in deleted.text
    # SC501: the tools set readOnlyHint only; SC504: notes:write is not in scopes_supported.
    assert found.get("SC501") == "medium" and found.get("SC504") == "low", shown(report)


@pytest.fixture(scope="module")
def pizzaz(sdk_servers: dict[str, SdkProcess]) -> SdkProcess:
    return sdk_servers["apps_sdk_pizzaz"]


def test_an_apps_sdk_example_without_auth_or_csp_is_reported(pizzaz: SdkProcess) -> None:
    report = scan(pizzaz.mcp_url)
    found = failed(report)
    assert pizzaz.initialize().status_code == 200  # nothing asks for a token
    assert found.get("SC201") == "medium", shown(report)  # its one tool is read-only
    assert found.get("SC601") == "high" and found.get("SC604") == "medium", shown(report)
    # The stylesheet and script come from an origin no CSP declares, so the host would block them.
    assert "SC606" in found, shown(report)
    assert not {"SC301", "SC302", "SC303", "SC304", "SC305", "SC306", "SC307"} & set(found), shown(report)


# The reference app ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The contacts app under ``ringfence serve`` with its embedded authorization server (which publishes
    RFC 8414 metadata, unlike the bare test identity provider)."""
    server = start_embedded(tmp_path_factory.mktemp("reference"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def read_only_token(reference: EmbeddedServer) -> str:
    client = DirectClient.register(reference.issuer, reference.mcp_url, token_endpoint_auth_method="none",
                                   local_address="127.0.0.3")
    user = BrowserLikeUser(reference.issuer, reference.account)
    try:
        return str(client.tokens(user, scope="contacts:read")["access_token"])
    finally:
        user.close()


@pytest.mark.parametrize(("with_token", "active"), [(False, False), (True, False), (True, True)],
                         ids=["anonymous", "read-only-token", "read-only-token-active"])
def test_the_reference_app_has_no_finding_above_low(reference: EmbeddedServer, read_only_token: str,
                                                    with_token: bool, active: bool) -> None:
    report = scan(reference.mcp_url, token=read_only_token if with_token else None, active=active, burst=100)
    assert not report.fails_at("medium"), shown(report)
    if with_token:
        outcomes = {finding.check.id: finding.outcome for finding in report.findings}
        assert outcomes["SC401"] == "pass" and outcomes["SC402"] == "pass", shown(report)
