"""RV202-RV206: the configuration ``ringfence serve`` would start with, judged before launch.

Each function takes what it judges (the settings, the data folder, the environment) and returns
findings; none writes anything. Secrets are named, never shown: a finding about an environment
variable or a token gives its name only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

from ringfence.app import App
from ringfence.config import Settings, is_loopback_host
from ringfence.guards.output import unsafe_output_warnings
from ringfence.network import loopback_reach_warnings
from ringfence.review.preflight_checks import ENVIRONMENT_SECRETS, MONITORING, PRIVATE_DATA, PUBLIC_URL, UNSAFE_OPTIONS
from ringfence.review.report import Finding, Severity
from ringfence.widgets import frame_warnings

_OTHERS = stat.S_IRWXG | stat.S_IRWXO
MIN_DISTINCT_SECRET_CHARACTERS = 10  # a random 16-character token has ~14; "aaaa…" or "changeme…" far fewer

# ringfence reads these secrets from the environment only (README: Configuration, Operations, preview).
RINGFENCE_SECRETS = frozenset({"RINGFENCE_METRICS_TOKEN", "RINGFENCE_ALERT_WEBHOOK_SECRET",
                               "RINGFENCE_INTROSPECTION_CLIENT_SECRET", "RINGFENCE_PREVIEW_TOKEN"})
# A variable is taken for a secret when a word of its name says so...
_SECRET_WORDS = frozenset({"SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE", "TOKEN", "CREDENTIAL",
                           "CREDENTIALS", "APIKEY", "PRIVATEKEY"})
_SECRET_PAIRS = frozenset({("API", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"), ("AUTH", "KEY"),
                           ("SIGNING", "KEY"), ("ENCRYPTION", "KEY")})
# ...unless its last word says it holds something else: an id, a file or folder, an address, a duration.
_NOT_SECRET_ENDINGS = frozenset({"ID", "IDS", "FILE", "PATH", "DIR", "URL", "URI", "ENDPOINT", "TYPE", "NAME",
                                 "HEADER", "SECONDS", "TTL", "LIFETIME", "LENGTH", "EXPIRY", "EXPIRES"})
_SOURCE_UNSAFE_ALL_OWNERS = re.compile(r"\bunsafe_all_owners\s*=\s*True\b")


# --- RV202 ------------------------------------------------------------------------------------------

def public_url_findings(public_url: str | None) -> list[Finding]:
    """The origin clients use is https; plain http only on loopback (development)."""
    if not public_url:
        return [Finding(PUBLIC_URL, "skip", "no public URL is set (RINGFENCE_PUBLIC_URL or --public-url); "
                                            "the server would publish http://HOST:PORT, which only this machine "
                                            "reaches")]
    try:
        parts = urlsplit(public_url)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        return [Finding(PUBLIC_URL, "fail", f"the public URL {public_url!r} is not an absolute URL")]
    if parts.scheme == "https":
        return [Finding(PUBLIC_URL, "pass", f"{public_url} is https")]
    if parts.scheme == "http" and is_loopback_host(host):
        return [Finding(PUBLIC_URL, "pass", f"{public_url} is plain http on loopback: for development only")]
    return [Finding(PUBLIC_URL, "fail", f"the public URL {public_url} is not https: access tokens, sign-in passwords "
                                        "and tool results would cross the network readable by anyone on the path")]


# --- RV203 ------------------------------------------------------------------------------------------

def private_data_findings(data_dir: Path, files: Iterable[Path] = ()) -> list[Finding]:
    """The data folder is 0700 and what ringfence keeps there (``keys/``, ``*.key``, ``audit-*``, and
    ``files``: the SQLite files, the log file) is open to nobody else (0600 or stricter)."""
    if not data_dir.is_dir():
        return [Finding(PRIVATE_DATA, "skip", f"there is no data folder at {data_dir} yet "
                                              "(`ringfence serve` creates it 0700)")]
    findings: list[Finding] = []
    folder_mode = stat.S_IMODE(data_dir.stat().st_mode)
    folder_open = bool(folder_mode & _OTHERS)
    if folder_open:
        findings.append(Finding(PRIVATE_DATA, "fail", f"the data folder is {folder_mode:04o}: other accounts on this "
                                                      "machine can enter it", str(data_dir),
                                (f"mode {folder_mode:04o}",)))
    checked = 0
    for path in _owned_paths(data_dir, files):
        mode = stat.S_IMODE(path.lstat().st_mode)
        checked += 1
        if not mode & _OTHERS:
            continue
        kind = "folder" if path.is_dir() else "file"
        # Inside a private folder the file is out of reach until the folder is opened (or copied as it is).
        severity: Severity = "high" if folder_open or not path.is_relative_to(data_dir) else "medium"
        findings.append(Finding(PRIVATE_DATA, "fail", f"the {kind} {path.name} is {mode:04o}: other accounts can "
                                                      f"{'enter' if kind == 'folder' else 'read'} it"
                                                      + ("" if severity == "high" else
                                                         " once the data folder is opened or copied"),
                                str(path), (f"mode {mode:04o}",), severity))
    if not findings:
        findings.append(Finding(PRIVATE_DATA, "pass", f"{data_dir} is {folder_mode:04o} and the {checked} keys, "
                                                      "checkpoints and database files checked are private"))
    return findings


def _owned_paths(data_dir: Path, files: Iterable[Path]) -> Iterator[Path]:
    """What ringfence writes in the data folder (as ``ringfence.store.private.tighten`` names it), then ``files``."""
    roots = sorted(path for path in data_dir.iterdir()
                   if path.name == "keys" or path.name.endswith(".key") or path.name.startswith("audit-"))
    seen: set[Path] = set()
    for path in [*roots, *files]:
        if path in seen or not os.path.lexists(path) or path.is_symlink():
            continue
        seen.add(path)
        yield path
        if path.is_dir():
            for folder, names, entries in os.walk(path):
                for name in sorted([*names, *entries]):
                    inner = Path(folder) / name
                    if not inner.is_symlink():
                        seen.add(inner)
                        yield inner


# --- RV204 ------------------------------------------------------------------------------------------

def unsafe_option_findings(app: App, settings: Settings | None, source_files: Iterable[str]) -> list[Finding]:
    """What ``ringfence serve`` would announce as UNSAFE at start-up, and ``unsafe_all_owners=True`` in the
    app's code (every user's rows in one session)."""
    findings = [Finding(UNSAFE_OPTIONS, "fail", line, "environment") for line in
                (settings.unsafe_options() if settings is not None else [])]
    findings += [Finding(UNSAFE_OPTIONS, "fail", line) for line in
                 [*unsafe_output_warnings(app.tools.values()), *loopback_reach_warnings(app.tools.values())]]
    # Frames may be the widget's purpose (a map, a video): app review looks at them, not a hole in itself.
    findings += [Finding(UNSAFE_OPTIONS, "fail", line, severity_override="medium")
                 for line in frame_warnings(app.widgets.values())]
    for file in sorted(set(source_files)):
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        findings += [Finding(UNSAFE_OPTIONS, "fail", "unsafe_all_owners=True: this session reads and writes every "
                                                     "user's rows; only maintenance code (a purge) should",
                             f"{file}:{number}", (line.strip(),), "low")
                     for number, line in enumerate(lines, 1) if _SOURCE_UNSAFE_ALL_OWNERS.search(line)]
    if not findings:
        checked = "the settings, " if settings is not None else ""
        findings.append(Finding(UNSAFE_OPTIONS, "pass", f"none in {checked}the tools, the widgets or the app's code"))
    return findings


# --- RV205 ------------------------------------------------------------------------------------------

def monitoring_findings(settings: Settings) -> list[Finding]:
    """/metrics answers only loopback peers or a random token; alerts are signed with a random secret."""
    findings: list[Finding] = []
    if settings.metrics and settings.metrics_token is not None and _guessable(settings.metrics_token):
        findings.append(Finding(MONITORING, "fail", "RINGFENCE_METRICS_TOKEN has few distinct characters: it can be "
                                                    "guessed, and /metrics shows every tool's traffic", "environment"))
    if settings.alert_webhook_url is not None:
        if settings.alert_webhook_secret is None:
            findings.append(Finding(MONITORING, "fail", "alerts are posted unsigned (no "
                                                        "RINGFENCE_ALERT_WEBHOOK_SECRET): the receiver cannot tell "
                                                        "them from forged ones", "environment",
                                    severity_override="low"))
        elif _guessable(settings.alert_webhook_secret):
            findings.append(Finding(MONITORING, "fail", "RINGFENCE_ALERT_WEBHOOK_SECRET has few distinct characters: "
                                                        "it can be guessed", "environment"))
    if findings:
        return findings
    if not settings.metrics:
        metrics = "/metrics is off"
    elif settings.metrics_token is not None:
        metrics = "/metrics answers scrapers presenting the metrics token"
    elif is_loopback_host(urlsplit(settings.base_url).hostname or ""):
        metrics = "/metrics answers loopback peers only"
    else:
        metrics = "/metrics answers nobody until RINGFENCE_METRICS_TOKEN is set"
    alerts = "alerts are signed" if settings.alert_webhook_url else "no alert webhook"
    return [Finding(MONITORING, "pass", f"{metrics}; {alerts}")]


def _guessable(secret: str) -> bool:
    return len(set(secret)) < MIN_DISTINCT_SECRET_CHARACTERS


# --- RV206 ------------------------------------------------------------------------------------------

def environment_secret_findings(environment: Mapping[str, str]) -> list[Finding]:
    """Variables that hold a secret: a name that says so (with a value that is not a file's path), or a
    URL with a password. Only names are reported."""
    findings = []
    for name in sorted(environment):
        if name in RINGFENCE_SECRETS or not (value := environment[name]).strip():
            continue
        if _names_a_secret(name) and not value.startswith(("/", "~")):
            findings.append(Finding(ENVIRONMENT_SECRETS, "fail", f"{name} holds a secret (its value is not shown)",
                                    "environment"))
        elif _url_with_password(value):
            findings.append(Finding(ENVIRONMENT_SECRETS, "fail", f"{name} holds a URL with a password "
                                                                 "(its value is not shown)", "environment"))
    if not findings:
        findings.append(Finding(ENVIRONMENT_SECRETS, "pass", f"none of the {len(environment)} environment variables "
                                                             "looks like a secret"))
    return findings


def _names_a_secret(name: str) -> bool:
    words = [word for word in re.split(r"[_\W]+", name.upper()) if word]
    if not words or words[-1] in _NOT_SECRET_ENDINGS:
        return False
    return any(word in _SECRET_WORDS for word in words) or any(pair in _SECRET_PAIRS for pair in pairwise(words))


def _url_with_password(value: str) -> bool:
    if "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value.strip()).password)
    except ValueError:
        return False
