"""What one scan has learnt so far, shared by its checks: the metadata documents, the challenge, the
tools, and the HTTP answers worth a second look (HTML pages, https responses)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ringfence.review.report import Check, Finding, Severity
from ringfence.review.scan.calls import CallOutcome
from ringfence.review.scan.probe import Exchange, Probe
from ringfence.review.scan.wire import Answer, McpSession


@dataclass
class ScanContext:
    url: str
    probe: Probe
    token: str | None = None
    active: bool = False
    burst: int = 100
    # discovery
    resource_metadata: dict[str, Any] | None = None
    resource_metadata_url: str | None = None
    issuer: str | None = None
    server_metadata: dict[str, Any] | None = None
    jwks: dict[str, Any] | None = None
    # challenges
    anonymous: Answer | None = None  # initialize without a token
    anonymous_session: McpSession | None = None  # when that initialize succeeded
    challenge: Exchange | None = None  # the first 401 seen without credentials
    tools: list[dict[str, Any]] = field(default_factory=list)
    protected_tools: list[dict[str, Any]] = field(default_factory=list)  # refused without a token
    anonymous_calls: dict[str, tuple[CallOutcome, Exchange]] = field(default_factory=dict)  # by tool name
    token_session: McpSession | None = None  # initialized with --token, when it was accepted
    accepted_forgery: str | None = None  # a forged token the server took: later checks may use it
    seen: list[Exchange] = field(default_factory=list)  # answers for the transport checks
    notes: list[str] = field(default_factory=list)  # what the report should say about how the scan ran

    @property
    def protected(self) -> bool:
        """The server asked for a token somewhere (a 401 challenge or published metadata)."""
        return self.challenge is not None or self.resource_metadata is not None

    def tool(self, name: str) -> dict[str, Any]:
        """A listed tool by name."""
        return next(tool for tool in self.tools if tool["name"] == name)

    @property
    def credential(self) -> str | None:
        """The token later checks send: --token, else a forged one the server accepted."""
        return self.token or self.accepted_forgery

    def session(self, token: str | None = None) -> McpSession:
        return McpSession(self.probe, self.url, token)

    def keep(self, exchange: Exchange) -> Exchange:
        self.seen.append(exchange)
        return exchange


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def passed(check: Check, message: str, location: str = "") -> Finding:
    return Finding(check, "pass", message, location)


def failed(check: Check, message: str, *evidence: Exchange | str, location: str = "",
           severity: Severity | None = None) -> Finding:
    shown = tuple(item if isinstance(item, str) else item.evidence() for item in evidence)
    return Finding(check, "fail", message, location, shown, severity)


def skipped(check: Check, message: str, location: str = "") -> Finding:
    return Finding(check, "skip", message, location)

