"""The scan's report, evidence and request bounds, without a server: what a reviewer reads must never hold
a token, every check must be documented, and the probe must refuse to leave its scope."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from ringfence import __version__
from ringfence.review.report import Finding, Report
from ringfence.review.scan.catalogue import SCAN_CHECKS
from ringfence.review.scan.probe import Exchange, OutOfScope, Probe, Unreachable, mask
from ringfence.review.scan.wire import challenge_parameters

README = Path(__file__).resolve().parents[2] / "README.md"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1zaG93bg"


def test_every_scan_check_is_documented_in_the_readme_with_its_severity() -> None:
    text = README.read_text(encoding="utf-8")
    for check in SCAN_CHECKS:
        assert re.search(rf"^\| {check.id} \| {check.severity} \| ", text, re.MULTILINE), check.id


def test_check_ids_are_unique_and_each_check_names_a_rule_and_a_fix() -> None:
    assert len({check.id for check in SCAN_CHECKS}) == len(SCAN_CHECKS)
    assert all(check.rule and check.fix and check.title for check in SCAN_CHECKS)


def test_evidence_masks_bearer_tokens_in_headers_bodies_and_query_strings() -> None:
    exchange = Exchange(
        "POST", f"http://127.0.0.1/mcp?access_token={TOKEN}", 401,
        httpx.Headers({"www-authenticate": 'Bearer error="invalid_token"', "content-type": "application/json"}),
        json.dumps({"echo": f"Bearer {TOKEN}"}).encode(), {"authorization": f"Bearer {TOKEN}"})
    shown = exchange.evidence()
    assert TOKEN not in shown and TOKEN[7:] not in shown
    assert "eyJhbG…(masked)" in shown and "-> 401" in shown and 'error="invalid_token"' in shown


def test_mask_keeps_text_without_secrets_unchanged() -> None:
    assert mask('Bearer resource_metadata="https://x/.well-known"') .startswith("Bearer resour")
    assert mask("GET /mcp -> 200") == "GET /mcp -> 200"


def test_the_probe_never_sends_to_an_origin_it_was_not_given() -> None:
    probe = Probe("http://127.0.0.1:9/mcp", timeout=1)
    with pytest.raises(OutOfScope):
        probe.request("GET", "http://203.0.113.7/.well-known/oauth-authorization-server")
    assert probe.sent == 0
    probe.allow("http://203.0.113.7")  # an advertised authorization server
    assert probe.allows("http://203.0.113.7/token") and not probe.allows("https://203.0.113.7/token")


def test_the_probe_stops_at_its_request_budget() -> None:
    probe = Probe("http://127.0.0.1:9/mcp", timeout=1, max_requests=1)
    with pytest.raises(Unreachable):  # nothing listens on port 9: sent, and counted
        probe.request("GET", "http://127.0.0.1:9/mcp")
    with pytest.raises(OutOfScope, match="budget"):
        probe.request("GET", "http://127.0.0.1:9/mcp")
    assert probe.sent == 1


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer resource_metadata="https://a/b", scope="x y"', {"resource_metadata": "https://a/b", "scope": "x y"}),
    ('Bearer error="invalid_token", error_description="bad, really"',
     {"error": "invalid_token", "error_description": "bad, really"}),
    ("Bearer realm=example", {"realm": "example"}),
    ('Basic realm="x"', {}),
    ("", {}),
])
def test_challenge_parameters_follow_rfc_6750_auth_params(header: str, expected: dict[str, str]) -> None:
    assert challenge_parameters(header) == expected


def test_sarif_has_one_rule_per_check_and_one_result_per_failure() -> None:
    check, other = SCAN_CHECKS[0], SCAN_CHECKS[1]
    report = Report("scan", "https://example.com/mcp", [
        Finding(check, "fail", "no metadata", "https://example.com/.well-known/oauth-protected-resource/mcp",
                ("GET ... -> 404",)),
        Finding(other, "pass", "fine"),
    ])
    sarif = report.to_sarif(__version__, SCAN_CHECKS)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [c.id for c in SCAN_CHECKS]
    (result,) = run["results"]
    assert result["ruleId"] == check.id and result["level"] == "error"
    assert result["ruleIndex"] == 0 and result["partialFingerprints"]["ringfence/v1"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("/mcp")
    assert report.fails_at("high") and not Report("scan", "x", [Finding(other, "pass", "")]).fails_at("info")
