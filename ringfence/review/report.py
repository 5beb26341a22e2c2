"""One report format for ``ringfence scan`` and ``ringfence review``: checks, findings, and three renderings.

A :class:`Check` is a rule in the catalogue (a stable id, a title, how bad a failure is, the rule it comes
from, how to fix it). A :class:`Finding` is one check's outcome on one target: ``fail`` with evidence,
``pass``, or ``skip`` (not applicable, or could not be checked: the message says which). A
:class:`Report` collects them and renders as a Rich table, as JSON, or as SARIF 2.1.0 for
code-scanning dashboards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "low", "medium", "high", "critical"]
Outcome = Literal["fail", "pass", "skip"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")

# SARIF 2.1.0 §3.27.10 levels, and GitHub code scanning's numeric security-severity (0-10) per severity.
_SARIF_LEVEL = {"info": "note", "low": "note", "medium": "warning", "high": "error", "critical": "error"}
_SECURITY_SEVERITY = {"info": "0.0", "low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Check:
    """A rule in the catalogue: what is checked, the source of the rule, and how to fix a failure."""

    id: str
    title: str
    severity: Severity
    rule: str
    fix: str


@dataclass(frozen=True)
class Finding:
    """One check's outcome on one target. ``severity`` overrides the check's when a failure is milder or worse."""

    check: Check
    outcome: Outcome
    message: str
    location: str = ""
    evidence: tuple[str, ...] = ()
    severity_override: Severity | None = None

    @property
    def severity(self) -> Severity:
        return self.severity_override or self.check.severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check.id,
            "title": self.check.title,
            "outcome": self.outcome,
            "severity": self.severity,
            "message": self.message,
            "location": self.location,
            "rule": self.check.rule,
            "fix": self.check.fix,
            "evidence": list(self.evidence),
        }


def at_least(severity: Severity, threshold: Severity) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


@dataclass
class Report:
    """Every finding of one run on one target, in the order the checks ran."""

    tool: str  # "scan" or "review"
    target: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run did, e.g. how many requests it sent

    def add(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def failures(self) -> list[Finding]:
        """Failed checks, worst first (stable within a severity)."""
        failed = [finding for finding in self.findings if finding.outcome == "fail"]
        return sorted(failed, key=lambda finding: -SEVERITIES.index(finding.severity))

    def fails_at(self, threshold: Severity) -> bool:
        return any(at_least(finding.severity, threshold) for finding in self.failures)

    def summary(self) -> str:
        counts = {severity: 0 for severity in reversed(SEVERITIES)}
        for finding in self.failures:
            counts[finding.severity] += 1
        passed = sum(1 for finding in self.findings if finding.outcome == "pass")
        skipped = sum(1 for finding in self.findings if finding.outcome == "skip")
        found = ", ".join(f"{count} {severity}" for severity, count in counts.items() if count) or "no findings"
        return f"{self.target}: {found}; {passed} checks passed, {skipped} skipped"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": f"ringfence {self.tool}",
            "target": self.target,
            "summary": self.summary(),
            "notes": self.notes,
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def to_sarif(self, version: str, checks: Sequence[Check]) -> dict[str, Any]:
        """SARIF 2.1.0: one rule per catalogue check, one result per failure (passes and skips are omitted)."""
        index = {check.id: position for position, check in enumerate(checks)}
        rules = [
            {
                "id": check.id,
                "name": check.title,
                "shortDescription": {"text": check.title},
                "fullDescription": {"text": f"{check.title} ({check.rule})"},
                "help": {"text": check.fix, "markdown": f"**Rule:** {check.rule}\n\n**Fix:** {check.fix}"},
                "defaultConfiguration": {"level": _SARIF_LEVEL[check.severity]},
                "properties": {"tags": ["security"], "security-severity": _SECURITY_SEVERITY[check.severity]},
            }
            for check in checks
        ]
        results = []
        for finding in self.failures:
            location = finding.location or self.target
            result: dict[str, Any] = {
                "ruleId": finding.check.id,
                "level": _SARIF_LEVEL[finding.severity],
                "message": {"text": f"{finding.message} Fix: {finding.check.fix}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": location}}}],
                "partialFingerprints": {"ringfence/v1": _fingerprint(finding.check.id, location, finding.message)},
                "properties": {"severity": finding.severity, "security-severity": _SECURITY_SEVERITY[finding.severity],
                               "evidence": list(finding.evidence)},
            }
            if finding.check.id in index:
                result["ruleIndex"] = index[finding.check.id]
            results.append(result)
        return {
            "$schema": _SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": f"ringfence {self.tool}", "version": version,
                                    "informationUri": "https://github.com/ringfence/ringfence", "rules": rules}},
                "results": results,
                "properties": {"target": self.target, "summary": self.summary()},
            }],
        }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
