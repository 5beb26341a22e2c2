"""``ringfence scan`` on the command line: its three formats, exit codes, request budget, and the origins it
reaches (only the MCP URL's and the issuer's the server advertises)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ringfence.review.scan.catalogue import SCAN_CHECKS
from ringfence.review.scan.runner import ScanError, scan
from tests.scan.flawed import SECURITY_HEADERS, FlawedServer
from tests.support.cli import Outcome, run_ringfence_many
from tests.support.idp import free_port


@pytest.fixture(scope="module")
def correct() -> Iterator[FlawedServer]:
    server = FlawedServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def forged_alg_none() -> Iterator[FlawedServer]:
    """Accepts unsigned tokens (SC302, critical) and nothing else is wrong."""
    server = FlawedServer(accept_alg_none=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def low_only() -> Iterator[FlawedServer]:
    """Metadata at the path form only (SC102, low) and nothing else is wrong."""
    server = FlawedServer(no_root_prm=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scan-cli")


@pytest.fixture(scope="module")
def runs(correct: FlawedServer, forged_alg_none: FlawedServer, low_only: FlawedServer,
         cli_folder: Path) -> dict[str, Outcome]:
    """Every command-line run of this module, started together (each is a real ``python -m ringfence``)."""
    budget = FlawedServer().start()
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "json": (["scan", forged_alg_none.mcp_url, "--format", "json"], {}),
        "sarif": (["scan", forged_alg_none.mcp_url, "--format", "sarif", "--output", str(cli_folder / "out.sarif")],
                  {}),
        "text": (["scan", forged_alg_none.mcp_url], {}),
        "critical-fail-on-critical": (["scan", forged_alg_none.mcp_url, "--fail-on", "critical"], {}),
        "correct-default-fail-on": (["scan", correct.mcp_url], {}),
        "low-fail-on-medium": (["scan", low_only.mcp_url, "--fail-on", "medium"], {}),
        "low-fail-on-low": (["scan", low_only.mcp_url, "--fail-on", "low"], {}),
        "unreachable": (["scan", f"http://127.0.0.1:{free_port()}/mcp"], {}),
        "not-a-url": (["scan", "ftp://127.0.0.1/mcp"], {}),
        "bad-option": (["scan", correct.mcp_url, "--burst", "0"], {}),
        "budget": (["scan", budget.mcp_url, "--format", "json", "--max-requests", "20", "--active", "--burst", "30"],
                   {"RINGFENCE_SCAN_TOKEN": budget.token("notes:read")}),
    }
    try:
        outcomes = run_ringfence_many(commands, cli_folder, deadline=60)
    finally:
        budget.stop()
    outcomes["budget-hits"] = Outcome(len(budget.hits), "", "")
    return outcomes


def test_json_report_lists_every_check_with_the_critical_failure(runs: dict[str, Outcome],
                                                                  forged_alg_none: FlawedServer) -> None:
    outcome = runs["json"]
    assert outcome.returncode == 1, outcome.stderr
    report = json.loads(outcome.stdout)
    assert report["tool"] == "ringfence scan" and report["target"] == forged_alg_none.mcp_url
    assert {finding["id"] for finding in report["findings"]} == {check.id for check in SCAN_CHECKS}
    unsigned = next(finding for finding in report["findings"] if finding["id"] == "SC302")
    assert unsigned["outcome"] == "fail" and unsigned["severity"] == "critical"
    assert unsigned["evidence"] and unsigned["fix"] and unsigned["rule"]
    assert report["summary"].startswith(f"{forged_alg_none.mcp_url}: 1 critical")


def test_sarif_output_is_sarif_2_1_0_with_rules_and_located_results(runs: dict[str, Outcome],
                                                                     cli_folder: Path) -> None:
    assert runs["sarif"].returncode == 1, runs["sarif"].stderr
    sarif = json.loads((cli_folder / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [check.id for check in SCAN_CHECKS]
    assert all(rule["shortDescription"]["text"] and rule["help"]["text"] for rule in rules)
    unsigned = next(result for result in run["results"] if result["ruleId"] == "SC302")
    assert unsigned["level"] == "error" and unsigned["message"]["text"]
    assert rules[unsigned["ruleIndex"]]["id"] == "SC302"
    assert unsigned["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert all(result["ruleId"] in {rule["id"] for rule in rules} for result in run["results"])


def test_text_output_names_the_failure_and_ends_with_the_summary_line(runs: dict[str, Outcome],
                                                                     forged_alg_none: FlawedServer) -> None:
    outcome = runs["text"]
    assert outcome.returncode == 1, outcome.stderr
    assert "SC302" in outcome.stdout
    summary = [line for line in outcome.stdout.splitlines() if line.startswith(forged_alg_none.mcp_url + ":")]
    assert summary and "1 critical" in summary[-1] and "checks passed" in summary[-1], outcome.stdout


def test_fail_on_sets_the_exit_code(runs: dict[str, Outcome]) -> None:
    """Exit 1 when a failure is at or above --fail-on (default high), 0 otherwise."""
    assert runs["critical-fail-on-critical"].returncode == 1
    assert runs["low-fail-on-low"].returncode == 1
    assert runs["low-fail-on-medium"].returncode == 0, runs["low-fail-on-medium"].stdout
    assert runs["correct-default-fail-on"].returncode == 0, runs["correct-default-fail-on"].stdout


def test_an_unreachable_url_or_a_bad_option_exits_2_without_a_traceback(runs: dict[str, Outcome]) -> None:
    for name in ("unreachable", "not-a-url", "bad-option"):
        outcome = runs[name]
        assert outcome.returncode == 2, (name, outcome.stdout, outcome.stderr)
        assert "Traceback" not in outcome.stderr
    assert "does not answer" in runs["unreachable"].stderr


def test_max_requests_is_never_exceeded_and_the_report_says_how_many_were_sent(runs: dict[str, Outcome]) -> None:
    report = json.loads(runs["budget"].stdout)
    assert runs["budget-hits"].returncode is not None and runs["budget-hits"].returncode <= 20 + 30  # + the burst
    assert any("requests sent (limit 50)" in note for note in report["notes"]), report["notes"]
    sent = int(next(note for note in report["notes"] if "requests sent" in note).split()[0])
    assert sent == runs["budget-hits"].returncode  # the count it reports is what the server received


# Origins -----------------------------------------------------------------------------------------------


class RecordingServer:
    """A loopback server that records every request; it may act as the issuer the MCP server advertises."""

    def __init__(self, documents: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.documents = documents or {}
        self.hits: list[str] = []
        self._server: uvicorn.Server | None = None

    async def _answer(self, request: Request) -> Response:
        self.hits.append(f"{request.method} {request.url.path}")
        document = self.documents.get(request.url.path)
        if isinstance(document, str):
            return HTMLResponse(document, headers=SECURITY_HEADERS)
        return JSONResponse(document) if document is not None else Response(status_code=404)

    def start(self) -> RecordingServer:
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "OPTIONS"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                     access_log=False, lifespan="off"))
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the recording server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def test_the_scan_reaches_only_the_server_and_its_advertised_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuer is on a second port; its metadata names a jwks_uri on a third, which must not be fetched
    (it is neither the scanned server nor the issuer), and no other address is connected to."""
    keys = RecordingServer().start()
    issuer = RecordingServer().start()
    issuer.documents = {
        "/.well-known/oauth-authorization-server": {
            "issuer": issuer.origin, "authorization_endpoint": f"{issuer.origin}/authorize",
            "token_endpoint": f"{issuer.origin}/token", "registration_endpoint": f"{issuer.origin}/register",
            "jwks_uri": f"{keys.origin}/jwks.json", "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"], "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True},
        "/authorize": "<!doctype html><title>Sign in</title>"}
    server = FlawedServer(issuer=issuer.origin).start()
    connected: list[tuple[str, int]] = []
    real_connect = socket.create_connection

    def recording_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append((address[0], int(address[1])))
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording_connect)
    try:
        report = scan(server.mcp_url, token=server.token("notes:read"), active=True, burst=40)
    finally:
        monkeypatch.undo()
        for running in (server, issuer, keys):
            running.stop()
    assert keys.hits == []
    # --active registers a client and sends one bad authorization request (SC803); nothing else reaches the issuer
    assert set(issuer.hits) <= {"GET /.well-known/oauth-authorization-server", "GET /authorize", "POST /register"}, \
        issuer.hits
    assert "GET /.well-known/oauth-authorization-server" in issuer.hits
    assert {port for _, port in connected} <= {server.port, issuer.port}, connected
    assert {host for host, _ in connected} == {"127.0.0.1"}, connected
    reached = report.notes[-1].split("only to ", 1)[1].split(", ")
    assert sorted(reached) == sorted([server.base_url, issuer.origin]), report.notes


def test_a_url_that_is_not_an_mcp_endpoint_is_refused_before_any_judgement(correct: FlawedServer) -> None:
    with pytest.raises(ScanError, match="not an MCP endpoint: initialize was answered 405"):
        scan(correct.base_url + "/")  # the server's HTML home page
    with pytest.raises(ScanError, match="not an MCP URL"):
        scan(correct.mcp_url + "?x=1")
