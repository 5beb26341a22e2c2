"""RV401: known vulnerabilities in the installed packages, as pip-audit reports them.

pip-audit runs in a child process on the environment ringfence runs in (``sys.executable``), and its
JSON answer is read here. Nothing is ever reported safe that was not checked: when pip-audit is
missing, fails, runs out of time or cannot reach the vulnerability service, or the service does not
know a package, the finding is ``skip`` with a "not checked" line saying why.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ringfence.review.preflight_checks import DEPENDENCIES
from ringfence.review.report import Finding

PIP_AUDIT_SECONDS = 300.0  # the whole run: one request per installed package
SOCKET_TIMEOUT_SECONDS = 15  # each request to the service
EDITABLE = "distribution marked as editable"  # pip-audit's reason for a package installed from a work tree
NAMED_SHOWN = 5


class DependenciesNotChecked(Exception):
    """Why the installed packages could not be checked, in one line."""


@dataclass(frozen=True)
class Vulnerability:
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    def describe(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version yet"
        return f"{self.id}{aliases}: {fixed}"


@dataclass(frozen=True)
class VulnerablePackage:
    name: str
    version: str
    vulnerabilities: tuple[Vulnerability, ...]


@dataclass(frozen=True)
class DependencyAudit:
    """What pip-audit found: the packages it checked, those vulnerable, and those it could not check."""

    audited: int
    vulnerable: tuple[VulnerablePackage, ...]
    unaudited: tuple[tuple[str, str], ...]  # (package, pip-audit's reason); editable installs left out


VulnerabilitySource = Callable[[], DependencyAudit]


def parse_pip_audit(text: str) -> DependencyAudit:
    """Read ``pip-audit --format json`` output (pip-audit 2.x); :class:`DependenciesNotChecked` if it is not that."""
    try:
        document = json.loads(text)
    except ValueError:
        raise DependenciesNotChecked("pip-audit's answer is not JSON") from None
    dependencies = document.get("dependencies") if isinstance(document, dict) else None
    if not isinstance(dependencies, list) or not all(isinstance(entry, dict) for entry in dependencies):
        raise DependenciesNotChecked("pip-audit's answer has no list of dependencies")
    audited, vulnerable, unaudited = 0, [], []
    for entry in dependencies:
        name = str(entry.get("name", "?"))
        if "skip_reason" in entry:
            if entry["skip_reason"] != EDITABLE:  # a work tree is not on PyPI: nothing to look up
                unaudited.append((name, str(entry["skip_reason"])))
            continue
        audited += 1
        vulns = [_vulnerability(vuln) for vuln in entry.get("vulns") or () if isinstance(vuln, dict)]
        if vulns:
            vulnerable.append(VulnerablePackage(name, str(entry.get("version", "?")), tuple(vulns)))
    return DependencyAudit(audited, tuple(vulnerable), tuple(unaudited))


def _vulnerability(entry: dict[str, Any]) -> Vulnerability:
    return Vulnerability(str(entry.get("id", "?")), tuple(str(alias) for alias in entry.get("aliases") or ()),
                         tuple(str(version) for version in entry.get("fix_versions") or ()))


def read_pip_audit_report(path: Path) -> VulnerabilitySource:
    """A source answering with a ``pip-audit --format json`` report written earlier (e.g. by CI)."""

    def answer() -> DependencyAudit:
        try:
            return parse_pip_audit(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DependenciesNotChecked(f"cannot read the pip-audit report {path}: {exc}") from None

    return answer


def run_pip_audit(*, cache_dir: Path | None = None, env: Mapping[str, str] | None = None,
                  seconds: float = PIP_AUDIT_SECONDS) -> DependencyAudit:
    """Run pip-audit on this interpreter's environment (``--local``, editable installs skipped) and read its answer.

    ``cache_dir``: pip-audit's HTTP cache (default pip's own); ``env``: the child's environment.
    """
    if importlib.util.find_spec("pip_audit") is None:
        raise DependenciesNotChecked("pip-audit is not installed (pip install 'ringfence[review]')")
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--local",
               "--skip-editable", "--desc", "off", "--timeout", str(SOCKET_TIMEOUT_SECONDS)]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds,  # noqa: S603 (our argv)
                             env=dict(env) if env is not None else None, check=False)
    except subprocess.TimeoutExpired:
        raise DependenciesNotChecked(f"pip-audit did not finish within {seconds:g} s") from None
    except OSError as exc:
        raise DependenciesNotChecked(f"pip-audit could not be started ({exc.strerror})") from None
    # 0: nothing found, 1: vulnerabilities found (with the JSON) or an error (without it).
    if run.returncode in (0, 1) and run.stdout.strip():
        return parse_pip_audit(run.stdout)
    raise DependenciesNotChecked(f"pip-audit could not reach the vulnerability service or failed: "
                                 f"{_reason(run.stderr)}")


def _reason(stderr: str) -> str:
    """The error pip-audit died of, short: its type and the host it tried, without credentials or URLs' paths."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error message"
    last = re.sub(r"//[^/@\s]*@", "//", lines[-1])  # a proxy URL's user:password
    kind, _, detail = last.partition(": ")
    host = re.search(r"host='([^']+)'", detail)
    if host and " " not in kind:
        return f"{kind.rsplit('.', 1)[-1]} reaching {host.group(1)}"
    return last[:200]


def dependency_findings(source: VulnerabilitySource | None) -> list[Finding]:
    """RV401 from ``source``'s answer: a failure per vulnerable package, a pass for the rest, a skip for
    what could not be checked. ``source`` None: the check was turned off (``--skip-dependencies``)."""
    if source is None:
        return [Finding(DEPENDENCIES, "skip", "--skip-dependencies was given")]
    try:
        audit = source()
    except DependenciesNotChecked as exc:
        return [Finding(DEPENDENCIES, "skip", f"{exc}")]
    findings = [
        Finding(DEPENDENCIES, "fail",
                f"{package.name} {package.version} has {len(package.vulnerabilities)} known "
                f"{'vulnerability' if len(package.vulnerabilities) == 1 else 'vulnerabilities'}: "
                + "; ".join(vuln.describe() for vuln in package.vulnerabilities),
                f"{package.name}=={package.version}")
        for package in audit.vulnerable
    ]
    total = audit.audited + len(audit.unaudited)
    if audit.audited and not audit.vulnerable:
        findings.append(Finding(DEPENDENCIES, "pass",
                                f"no known vulnerability in the {audit.audited} packages pip-audit checked"))
    if audit.unaudited:
        names = ", ".join(name for name, _ in audit.unaudited[:NAMED_SHOWN])
        more = f" and {len(audit.unaudited) - NAMED_SHOWN} more" if len(audit.unaudited) > NAMED_SHOWN else ""
        which = "any" if not audit.audited else str(len(audit.unaudited))
        findings.append(Finding(
            DEPENDENCIES, "skip",
            f"the vulnerability service could not check {which} of the {total} installed packages "
            f"({names}{more}); pip-audit: {audit.unaudited[0][1]}"))
    if total == 0:
        findings.append(Finding(DEPENDENCIES, "skip", "pip-audit found no installed package"))
    return findings
