"""The scanner's only way onto the network: bounded, timed requests to the scanned server and its
authorization server, each kept as trimmed evidence with secrets masked.

A scan must be safe to point at a production server: it never follows redirects, never talks to an
origin it was not given (the MCP URL's, then the authorization servers the server itself advertises),
stops after a fixed number of requests, and never writes a token into its evidence.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ringfence.detect.redactor import Redactor

USER_AGENT = "ringfence-scan (security review; https://github.com/ringfence/ringfence)"
EVIDENCE_BODY_CHARS = 400
MAX_BODY_BYTES = 2 * 1024 * 1024
_SHOWN_HEADERS = ("www-authenticate", "content-type", "location", "retry-after", "mcp-session-id",
                  "access-control-allow-origin", "access-control-allow-credentials", "strict-transport-security",
                  "content-security-policy", "x-content-type-options", "x-frame-options")
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9\-._~+/]+=*)(?![A-Za-z0-9\-._~+/=\"])")  # RFC 6750 §2.1
_TOKEN_PARAMETER = re.compile(r"(?i)((?:access_token|token|code|client_secret)=)([^&\s\"']+)")


class OutOfScope(Exception):
    """A request to an origin the scan was not given, or past the request budget; never sent."""


class Unreachable(Exception):
    """The request was sent but no answer came (connection refused, TLS failure, timeout)."""


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, as the evidence shows them."""

    method: str
    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    request_headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def evidence(self, note: str = "") -> str:
        """``METHOD url [request headers] -> status, shown headers, trimmed body``, secrets masked."""
        sent = "".join(f" {name}: {mask(value)};" for name, value in self.request_headers.items())
        shown = "; ".join(f"{name}: {mask(self.headers[name])}" for name in _SHOWN_HEADERS if name in self.headers)
        body = _trimmed(self.text)
        line = f"{self.method} {mask(self.url)}{' [' + sent.strip(' ;') + ']' if sent else ''} -> {self.status}"
        line += f" ({shown})" if shown else ""
        line += f" {body}" if body else ""
        return f"{note}: {line}" if note else line


def mask(text: str) -> str:
    """Bearer tokens and token-like query parameters shortened to their first 6 characters."""
    text = _BEARER.sub(lambda match: match.group(1) + _short(match.group(2)), text)
    return _TOKEN_PARAMETER.sub(lambda match: match.group(1) + _short(match.group(2)), text)


def _short(secret: str) -> str:
    return secret[:6] + "…(masked)" if len(secret) > 6 else "…(masked)"


@functools.cache
def _redactor() -> Redactor:
    return Redactor()


def _trimmed(text: str) -> str:
    """The body on one line, cut to EVIDENCE_BODY_CHARS, with personal data and secrets redacted."""
    text = " ".join(text.split())
    if len(text) > EVIDENCE_BODY_CHARS:
        text = text[:EVIDENCE_BODY_CHARS] + f"… ({len(text)} characters)"
    return mask(_redactor().redact(text))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))


class Probe:
    """A request budget and an allow-list of origins around one ``httpx.Client``."""

    def __init__(self, target: str, *, timeout: float = 10, max_requests: int = 200) -> None:
        self.target = target
        self.max_requests = max_requests
        self.sent = 0
        self._origins = {origin(target)}
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, headers={"user-agent": USER_AGENT})

    def close(self) -> None:
        self._client.close()

    def allow(self, url: str) -> None:
        """Add an authorization server's origin: only ones the scanned server advertised are added."""
        self._origins.add(origin(url))

    def allows(self, url: str) -> bool:
        return origin(url) in self._origins

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None,
                content: bytes | None = None, params: dict[str, str] | None = None) -> Exchange:
        if not self.allows(url):
            raise OutOfScope(f"{origin(url)} is not the scanned server or an authorization server it advertises")
        if self.sent >= self.max_requests:
            raise OutOfScope(f"the request budget ({self.max_requests}) is spent")
        self.sent += 1
        headers = dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers.setdefault("content-type", "application/json")
        try:
            with self._client.stream(method, url, headers=headers, content=content, params=params) as response:
                body = _capped_body(response)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {mask(url)}: {type(exc).__name__}") from None
        shown_request = {name: value for name, value in headers.items() if name.lower() in ("authorization", "host",
                                                                                           "origin", "content-type")}
        return Exchange(method, str(response.request.url), response.status_code, response.headers, body,
                        shown_request)


def _capped_body(response: httpx.Response) -> bytes:
    """At most MAX_BODY_BYTES of the answer, and an event stream only up to its first JSON-RPC response:
    a scanned server cannot make the scanner hold more, or wait on a stream kept open."""
    stream = response.headers.get("content-type", "").startswith("text/event-stream")
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= MAX_BODY_BYTES:
            break
        if stream and body.endswith((b"\n\n", b"\r\n\r\n")) and (b'"result"' in body or b'"error"' in body):
            break
    return body[:MAX_BODY_BYTES]
