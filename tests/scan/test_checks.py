"""Each ``ringfence scan`` check fires on a server with the one flaw it looks for, and stays quiet on the
same server without it (tests/scan/flawed.py: a correct MCP server written without ringfence)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ringfence.review.report import Report
from ringfence.review.scan.catalogue import SCAN_CHECKS
from ringfence.review.scan.runner import scan
from tests.scan.flawed import FlawedServer
from tests.support.tls import TlsFiles, make_certificates

OTHER_AUDIENCE = "https://other.notes.example.com/mcp"
BURST = 40  # the flawed server allows 30 requests of one method per client and window


@dataclass(frozen=True)
class Case:
    """A server with ``flaws`` scanned with ``token`` ("read": notes:read, "other": for another audience)
    and ``active``: the checks in ``fires`` fail."""

    flaws: tuple[str, ...]
    fires: tuple[str, ...]
    token: str | None = None
    active: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "+".join(self.flaws) or "correct"


CASES = [
    # discovery (RFC 9728, RFC 8414)
    Case(("no_prm",), ("SC101",)),
    Case(("no_root_prm",), ("SC102",)),
    Case(("prm_resource_trailing_slash",), ("SC103",)),
    Case(("no_authorization_servers",), ("SC104",)),
    Case(("offline_access_scope",), ("SC105",)),
    Case(("bearer_query",), ("SC106",)),
    Case(("no_as_metadata",), ("SC110",)),
    Case(("issuer_mismatch",), ("SC111",)),
    Case(("no_pkce",), ("SC112",)),
    Case(("pkce_plain",), ("SC113",)),
    Case(("no_registration",), ("SC114",)),
    Case(("no_iss_parameter",), ("SC115",)),
    Case(("http_endpoints",), ("SC116",)),
    # challenges
    Case(("no_auth_at_all",), ("SC201",)),
    Case(("challenge_without_resource_metadata",), ("SC202",)),
    Case(("challenge_without_scope",), ("SC203",)),
    Case(("error_without_credentials",), ("SC204",)),
    Case(("public_tool_needs_token",), ("SC205",)),
    Case(("refusal_without_challenge",), ("SC206",)),
    Case(("tool_unprotected",), ("SC207",)),
    # forged tokens: an expired or foreign-audience token can only be forged (the scanner has no key of the
    # issuer), so ignoring exp or aud shows only on a server that also skips the signature.
    Case(("accept_malformed",), ("SC301",)),
    Case(("accept_alg_none",), ("SC302",)),
    Case(("skip_signature",), ("SC303",)),
    Case(("hs256_confusion",), ("SC304",)),
    Case(("skip_signature", "ignore_expiry"), ("SC303", "SC305")),
    Case(("skip_signature", "ignore_audience"), ("SC303", "SC306")),
    Case(("accept_query_token",), ("SC307",)),
    # a real token
    Case((), ("SC401",), token="other"),
    Case(("ignore_audience",), ("SC404",), token="other"),
    Case(("no_scope_check",), ("SC402",), token="read"),
    Case(("scope_challenge_without_scope",), ("SC403",), token="read"),
    # tools
    Case(("missing_hints",), ("SC501",)),
    Case(("delete_marked_read_only",), ("SC502",)),
    Case(("poisoned_description",), ("SC503",)),
    # without securitySchemes the noauth tool looks like any other, and it answers anonymously (SC207)
    Case(("no_security_schemes",), ("SC504", "SC207")),
    # widgets
    # without a CSP the host blocks the widget's fetch to its API, which the widget lint reports (RF105)
    Case(("widget_no_csp",), ("SC601", "SC606")),
    Case(("widget_wildcard_csp",), ("SC602",)),
    Case(("widget_frames",), ("SC603",)),
    Case(("widget_no_domain",), ("SC604",)),
    Case(("widget_wrong_mime",), ("SC605",)),
    Case(("widget_lint",), ("SC606",)),
    # transport
    Case(("no_host_check",), ("SC701",)),
    Case(("no_origin_check",), ("SC702",)),
    Case(("cors_reflect_credentials",), ("SC703",)),
    Case(("no_security_headers",), ("SC704",)),
    Case((), ("SC705",), options={"network": True}),
    Case(("no_hsts",), ("SC706",), options={"https": True}),
    # --active
    Case(("no_rate_limit",), ("SC801",), active=True),
    Case(("rate_limit_without_retry_after",), ("SC801",), active=True),
    Case(("crash_on_bad_json",), ("SC802",), active=True),
    Case(("crash_on_deep_json",), ("SC802",), active=True),
    Case(("crash_on_huge_body",), ("SC802",), active=True),
    Case(("no_iss_in_response",), ("SC803",), active=True),
]


def network_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, to serve plain http on a network address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel picks the source address
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


class Scanner:
    """Starts flawed servers and scans them, with the test CA trusted for https (SSL_CERT_FILE)."""

    def __init__(self, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tls = tls
        self.monkeypatch = monkeypatch

    def server(self, case: Case, *flaws: str) -> FlawedServer:
        options: dict[str, Any] = {}
        if case.options.get("https"):
            options["tls"] = self.tls
        if case.options.get("network"):
            address = network_address()
            if address is None:
                pytest.skip("this machine has no non-loopback IPv4 address to serve plain http on")
            options["public_host"] = address
        return FlawedServer(**options, **dict.fromkeys(flaws, True)).start()

    def scan(self, server: FlawedServer, case: Case) -> Report:
        token = {"read": server.token("notes:read"), "other": server.token("notes:read", audience=OTHER_AUDIENCE),
                 None: None}[case.token]
        server.reset_rate_limit()
        with self.monkeypatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(self.tls.ca))
            return scan(server.public_url, token=token, active=case.active, burst=BURST, timeout=10)


@pytest.fixture(scope="module")
def scanner(tls: TlsFiles) -> Iterator[Scanner]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Scanner(tls, monkeypatch)


def outcomes(report: Report) -> dict[str, str]:
    """Each check's worst outcome (a check reported per widget or page may appear more than once)."""
    worst: dict[str, str] = {}
    order = {"fail": 2, "skip": 1, "pass": 0}
    for finding in report.findings:
        current = worst.get(finding.check.id)
        if current is None or order[finding.outcome] > order[current]:
            worst[finding.check.id] = finding.outcome
    return worst


def failing(report: Report) -> set[str]:
    return {finding.check.id for finding in report.failures}


def shown(report: Report) -> str:
    return "\n".join(f"{f.check.id} {f.outcome} {f.severity}: {f.message}" for f in report.findings
                     if f.outcome != "pass")


_correct_reports: dict[tuple[Any, ...], Report] = {}


def correct_report(scanner: Scanner, case: Case) -> Report:
    """The correct server scanned as ``case`` scans its flawed one (one scan per option set, reused)."""
    key = (case.token, case.active, tuple(sorted(case.options)))
    if key not in _correct_reports:
        correct = Case((), (), case.token, case.active, case.options)
        server = scanner.server(correct)
        try:
            _correct_reports[key] = scanner.scan(server, correct)
        finally:
            server.stop()
    return _correct_reports[key]


def test_every_check_in_the_catalogue_has_a_server_that_trips_it() -> None:
    assert {check.id for check in SCAN_CHECKS} == {check for case in CASES for check in case.fires}


@pytest.mark.parametrize("case", CASES, ids=[f"{case.id}-{'-'.join(case.fires)}" for case in CASES])
def test_the_check_fires_on_its_flaw_and_nothing_else_does(scanner: Scanner, case: Case) -> None:
    server = scanner.server(case, *case.flaws)
    try:
        report = scanner.scan(server, case)
    finally:
        server.stop()
    seen = outcomes(report)
    assert all(seen.get(check) == "fail" for check in case.fires), shown(report)
    baseline = failing(correct_report(scanner, case))
    assert failing(report) - baseline <= set(case.fires), shown(report)


# Quiet where the flaw is the setting: SC401 with a token for this server, SC705 on loopback.
QUIET = sorted({(check, "read" if check == "SC401" else case.token, case.active,
                 tuple(sorted(option for option in case.options if option != "network")))
                for case in CASES for check in case.fires})


@pytest.mark.parametrize(("check", "token", "active", "options"), QUIET, ids=[entry[0] for entry in QUIET])
def test_the_check_is_quiet_on_the_correct_server(scanner: Scanner, check: str, token: str | None, active: bool,
                                                  options: tuple[str, ...]) -> None:
    report = correct_report(scanner, Case((), (), token, active, dict.fromkeys(options, True)))
    assert outcomes(report)[check] in ("pass", "skip"), shown(report)


def test_the_correct_server_has_no_finding_above_low_in_any_mode(scanner: Scanner) -> None:
    for token, active in ((None, False), ("read", False), ("read", True)):
        report = correct_report(scanner, Case((), (), token, active))
        assert not report.fails_at("medium"), shown(report)


def test_a_tool_answer_that_shows_neither_a_refusal_nor_a_run_is_not_counted_as_protected() -> None:
    """Fail closed: a 500 to a tool call proves no protection, so SC207 and SC402 are not checked, never passed."""
    server = FlawedServer(tool_crashes=True).start()
    try:
        report = scan(server.mcp_url, token=server.token("notes:read"))
    finally:
        server.stop()
    outcomes = {finding.check.id: finding for finding in report.findings}
    for check in ("SC207", "SC402"):
        assert outcomes[check].outcome == "skip", outcomes[check]
        assert "neither a refusal nor a run" in outcomes[check].message and "(500)" in outcomes[check].message
