"""The sanctioned HTTP client for tools: requests go only to the hosts a tool declares with ``reaches=``.

    from ringfence import network

    @app.tool(effect="read", open_world=True, reaches=["api.weather.example"])
    async def forecast(city: str) -> dict:
        response = await network.get("https://api.weather.example/v1/forecast", params={"city": city})
        return response.json()

Every request, in order:

1. made inside a call to a tool (guards/wrapper.py binds it) whose ``reaches=`` lists the URL's host
   and port (a host without a port means 443); https only, no credentials in the URL;
2. the host resolved once, every address checked public and the connection pinned to them
   (ringfence/netguard.py, the SSRF guard client metadata fetching uses too); only a host the tool
   declares as ``localhost`` or a loopback literal may reach loopback (development, logged UNSAFE
   at start-up); a private or link-local address never; a name that does not resolve fails
   (:class:`NetworkFailed`) rather than being refused;
3. TLS verified against the system trust store (``SSL_CERT_FILE`` honoured); nothing turns it off;
4. connect and read timeouts, and one deadline for the whole request, retries and redirects included;
5. at most ``MAX_REDIRECTS`` redirects, each target checked as in 1 and 2 before it is requested;
6. a connection failure or a 502/503/504 retried (``RETRIES`` times, exponential backoff with jitter,
   ``Retry-After`` respected up to ``MAX_RETRY_AFTER_SECONDS``) for idempotent methods only (RFC 9110
   §9.2.2: GET, HEAD, OPTIONS, PUT, DELETE); a POST or PATCH is sent once;
7. the body read while it stays within ``max_bytes`` (1 MiB unless the call says), the request
   aborted past it; a compressed answer, which is never asked for, is refused (no decompression bombs);
8. one log line per request through the redacting log pipeline: tool, method, server, path with the
   query's names but not its values, status, bytes, duration, attempts; never headers or bodies.

The caller's headers go to the URL's server only: a ``Host`` header of the caller's own is refused (the
host checked, connected to and named in TLS is the URL's, so another name there would front for a
host nobody checked), and a redirect to another origin carries none of them but ``SAFE_HEADERS``.
Proxies and ``.netrc`` from the environment are never used: requests go straight to the checked
addresses.

A request the declaration does not allow raises :class:`NetworkRefused`, one that fails
:class:`NetworkFailed`; both are :class:`ringfence.ToolError`, so a tool that lets them through ends
with their message as its tool error, never an internal error.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from ringfence.errors import ToolError
from ringfence.netguard import AddressRefused, NameNotResolved, PinnedBackend, is_loopback_host, resolve_checked

if TYPE_CHECKING:
    from ringfence.declaration import ToolSpec

logger = logging.getLogger("ringfence.network")

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
TOTAL_SECONDS = 30.0  # one request, its retries and redirects included
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
RETRIES = 2  # after the first attempt
BACKOFF_SECONDS = 0.25  # the first retry waits 0.125-0.25 s, each next one twice as long
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After ends the retries: its answer is returned
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 §9.2.2
RETRY_STATUSES = frozenset({502, 503, 504})
# What a redirect to another origin keeps of the caller's headers: nothing that could be a credential
# (Authorization, Cookie, X-Api-Key, Proxy-Authorization, ...). Host, Accept-Encoding and the body's
# framing are the client's own, set for the new target; Content-Type only while the body goes along.
SAFE_HEADERS = frozenset({"accept", "accept-language", "content-type", "user-agent"})
_CLIENT_HEADERS = frozenset({"host", "accept-encoding", "content-length", "transfer-encoding"})
_CONNECT_ERRORS = (httpcore.ConnectError, httpcore.ConnectTimeout)  # nothing was sent: safe to send again
_jitter = secrets.SystemRandom()


class NetworkRefused(ToolError):
    """A request the tool's declaration does not allow; nothing was sent."""


class NetworkFailed(ToolError):
    """An allowed request that did not complete: no connection, no answer in time, too many redirects."""


class ResponseTooLarge(NetworkFailed):
    """An answer longer than the request's ``max_bytes``; reading stopped there."""


# The tool whose requests are being made ----------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """What one tool may reach: the ``host:port`` pairs its ``reaches=`` declares (443 when none is said)."""

    tool: str
    servers: frozenset[str]

    @classmethod
    def of(cls, spec: ToolSpec) -> Reach:
        return cls(spec.name, frozenset(host if ":" in host else f"{host}:443" for host in spec.reaches))

    def allows(self, host: str, port: int) -> bool:
        return f"{host}:{port}" in self.servers


_reach: ContextVar[Reach | None] = ContextVar("ringfence_reach", default=None)


@contextmanager
def reaching_for(reach: Reach) -> Iterator[None]:
    """Requests made inside are the tool's: the tool wrapper binds its ``Reach.of(spec)`` around the author's code."""
    token = _reach.set(reach)
    try:
        yield
    finally:
        _reach.reset(token)


def _current_reach() -> Reach:
    reach = _reach.get()
    if reach is None:
        raise NetworkRefused("ringfence.network makes requests only inside a tool call, to the hosts the tool "
                             "declares with reaches=.")
    if not reach.servers:
        raise NetworkRefused(f"{reach.tool} declares no hosts it reaches (reaches=), so it makes no requests.")
    return reach


# Start-up ----------------------------------------------------------------------------------------


def describe_reaches(tools: Iterable[ToolSpec]) -> list[str]:
    """One start-up line per tool that makes requests: the hosts it may reach."""
    return [f"tool {spec.name} may reach {', '.join(sorted(spec.reaches))}" for spec in tools if spec.reaches]


def loopback_reach_warnings(tools: Iterable[ToolSpec]) -> list[str]:
    """What start-up reports as UNSAFE: each loopback host a tool declares (for development only)."""
    return [f"tool {spec.name} reaches {host}, a loopback host: its requests can reach services on this machine"
            for spec in tools for host in sorted(spec.reaches) if is_loopback_host(host.rsplit(":", 1)[0])]


# The public API ----------------------------------------------------------------------------------


async def get(url: str, **options: Any) -> httpx.Response:
    """``GET url``; see :func:`request` for the options."""
    return await request("GET", url, **options)


async def post(url: str, **options: Any) -> httpx.Response:
    """``POST url`` (never retried); see :func:`request` for the options."""
    return await request("POST", url, **options)


async def put(url: str, **options: Any) -> httpx.Response:
    """``PUT url``; see :func:`request` for the options."""
    return await request("PUT", url, **options)


async def patch(url: str, **options: Any) -> httpx.Response:
    """``PATCH url`` (never retried); see :func:`request` for the options."""
    return await request("PATCH", url, **options)


async def delete(url: str, **options: Any) -> httpx.Response:
    """``DELETE url``; see :func:`request` for the options."""
    return await request("DELETE", url, **options)


async def request(
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    data: Mapping[str, Any] | None = None,
    timeout: float = TOTAL_SECONDS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> httpx.Response:
    """Send one request for the tool now running and return its answer, body read (``.json()``, ``.text``).

    Any status is returned as it is (after the retries, for an idempotent method); :class:`NetworkRefused`
    when the tool may not make it, :class:`NetworkFailed` when it did not complete. ``timeout`` bounds
    the whole request in seconds, ``max_bytes`` its answer's body.
    """
    reach = _current_reach()
    method = str(method).upper()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(sorted(METHODS))}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise ValueError("timeout= takes seconds, more than 0 and at most 3600")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError("max_bytes= takes a positive number of bytes")
    trace = _Trace(reach.tool, method)
    started = time.perf_counter()
    try:
        # trust_env=False: no proxy (HTTPS_PROXY, ALL_PROXY, ...) and no .netrc credentials from the environment
        async with httpx.AsyncClient(transport=_GuardedTransport(reach, max_bytes), trust_env=False,
                                     headers={"User-Agent": "ringfence"},
                                     timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)) as client:
            sent = _build(client, trace, url, params=params, headers=headers, json=json, content=content, data=data)
            _check_target(reach, sent.url)
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    response = await _with_retries(client, sent, trace, reach)
                    await _read(response, trace, max_bytes)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise NetworkFailed(f"The request to {trace.server} did not complete within {timeout:g} s.") from None
        trace.outcome = "ok"
        return response
    except NetworkRefused:
        trace.outcome = "refused"
        raise
    except NetworkFailed as failed:
        trace.outcome = "too_large" if isinstance(failed, ResponseTooLarge) else "failed"
        raise
    except (httpcore.TimeoutException, httpx.TimeoutException):
        trace.outcome = "failed"
        raise NetworkFailed(f"{trace.server} did not answer in time.") from None
    except (httpcore.ConnectError, httpx.ConnectError):
        trace.outcome = "failed"
        raise NetworkFailed(f"The request to {trace.server} failed: no connection could be made.") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpx.HTTPError, ssl.SSLError, OSError) as exc:
        trace.outcome = "failed"  # TLS, a dropped connection, a malformed answer: the detail stays in the log
        trace.error = type(exc).__name__
        raise NetworkFailed(f"The request to {trace.server} failed before a complete answer arrived.") from None
    finally:
        trace.log(time.perf_counter() - started)


# Checks ------------------------------------------------------------------------------------------


def _build(client: httpx.AsyncClient, trace: _Trace, url: object, **parts: Any) -> httpx.Request:
    """The request as it will be sent first; only the names in the URL's query go to the log."""
    if not isinstance(url, str | httpx.URL):
        raise NetworkRefused(f"{trace.tool} was refused a request: the URL must be a string.")
    try:
        headers = httpx.Headers(parts.get("headers"))
    except (TypeError, ValueError, UnicodeError):
        raise NetworkRefused(f"{trace.tool} was refused a request: headers= takes names and values as "
                             "strings.") from None
    if "host" in headers:
        # The host checked, resolved and named in TLS is the URL's; another Host would reach a virtual
        # host behind the same server (domain fronting) that the declaration never named.
        raise NetworkRefused(f"{trace.tool} was refused a request: it may not set a Host header; the host is "
                             "always the URL's.")
    try:
        built = client.build_request(trace.method, url, **parts)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError):
        raise NetworkRefused(f"{trace.tool} was refused a request: its URL is not a valid absolute URL.") from None
    built.headers["Accept-Encoding"] = "identity"  # no compressed answers: the byte cap is the size in memory
    trace.target(built.url)
    return built


def _check_target(reach: Reach, url: httpx.URL, *, redirected_from: str | None = None) -> None:
    """Refuse a URL the tool may not request: not https, credentials in it, or a server it does not declare."""
    server = _server(url)
    if url.scheme != "https":
        raise NetworkRefused(f"{reach.tool} makes https requests only; the {url.scheme or 'scheme-less'} "
                             f"request to {server} was refused.")
    if url.userinfo:
        raise NetworkRefused(f"{reach.tool} was refused a request to {server}: credentials go in headers, "
                             "never in the URL.")
    if not reach.allows(url.raw_host.decode("ascii"), url.port or 443):
        if redirected_from is not None:
            raise NetworkRefused(f"{redirected_from} redirected {reach.tool}'s request to {server}, which the tool "
                                 "does not declare (reaches=); the redirect was not followed.")
        raise NetworkRefused(f"{reach.tool} may not reach {server}: it is not among the hosts the tool "
                             "declares (reaches=).")


def _server(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii", "replace")
    return host if url.port in (None, 443) else f"{host}:{url.port}"


# Sending -----------------------------------------------------------------------------------------


async def _with_retries(client: httpx.AsyncClient, request: httpx.Request, trace: _Trace,
                        reach: Reach) -> httpx.Response:
    """The final answer, after retrying an idempotent request that failed to connect or got a 502/503/504."""
    retryable = request.method in IDEMPOTENT_METHODS
    for attempt in range(1, RETRIES + 2):
        trace.attempts = attempt
        last = attempt > RETRIES or not retryable
        try:
            response = await _following_redirects(client, request, trace, reach)
        except _CONNECT_ERRORS:
            if last:
                raise
            await asyncio.sleep(_backoff(attempt))
            continue
        trace.status = response.status_code
        delay = None if last or response.status_code not in RETRY_STATUSES else _retry_delay(response, attempt)
        if delay is None:
            return response
        await response.aclose()
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _following_redirects(client: httpx.AsyncClient, request: httpx.Request, trace: _Trace,
                               reach: Reach) -> httpx.Response:
    """The answer after at most ``MAX_REDIRECTS`` redirects, each target checked before it is requested."""
    trace.redirects = 0
    while True:
        response = await client.send(request, stream=True, follow_redirects=False)
        following = response.next_request  # httpx's redirect rules: 303 becomes GET, Authorization kept same-origin
        if following is None:
            return response
        await response.aclose()  # a redirect's body is never read
        if trace.redirects == MAX_REDIRECTS:
            raise NetworkFailed(f"The request to {trace.server} was redirected more than {MAX_REDIRECTS} times; "
                                "it was stopped.")
        _check_target(reach, following.url, redirected_from=_server(request.url))
        if _origin(following.url) != _origin(request.url):
            _keep_safe_headers(following, body_kept=following.method == request.method)
        trace.redirects += 1
        request = following


def _origin(url: httpx.URL) -> tuple[str, bytes, int]:
    return url.scheme, url.raw_host.lower(), url.port or 443


def _keep_safe_headers(request: httpx.Request, *, body_kept: bool) -> None:
    """A request redirected to another origin: the caller's headers other than ``SAFE_HEADERS`` dropped
    (httpx drops only Authorization), so an API key meant for one host never reaches another."""
    keep = SAFE_HEADERS | _CLIENT_HEADERS
    if not body_kept:  # a 303 turned it into a GET: no body, so no Content-Type
        keep -= {"content-type"}
    for name in {name.lower() for name in request.headers} - keep:
        del request.headers[name]


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: half to all of ``BACKOFF_SECONDS * 2**(attempt - 1)``."""
    return BACKOFF_SECONDS * 2 ** (attempt - 1) * _jitter.uniform(0.5, 1.0)


def _retry_delay(response: httpx.Response, attempt: int) -> float | None:
    """How long to wait before the next attempt; ``None`` when the server asks for longer than we wait."""
    asked = _retry_after(response.headers.get("retry-after"))
    if asked is not None and asked > MAX_RETRY_AFTER_SECONDS:
        return None
    return max(_backoff(attempt), asked or 0.0)


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; ``None`` when absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if _is_decimal(value):  # a huge number is a long wait: more than we wait, so no retry
        return float(value) if len(value) <= 12 else float("inf")
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def _is_decimal(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and other digits ``int`` and ``float`` refuse."""
    return value.isascii() and value.isdigit()


async def _read(response: httpx.Response, trace: _Trace, max_bytes: int) -> None:
    """Read the body within ``max_bytes`` (the transport stops past it), uncompressed only."""
    try:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise NetworkFailed(f"{trace.server} answered with a compressed body ({encoding[:20]}), which was "
                                "not asked for; it was not read.")
        length = response.headers.get("content-length", "").strip()
        if _is_decimal(length) and (len(length) > 18 or int(length) > max_bytes):  # no int() of 5000 digits
            raise ResponseTooLarge(_too_large(trace.server, max_bytes))
        await response.aread()
        trace.bytes = len(response.content)
    finally:
        await response.aclose()


def _too_large(server: str, max_bytes: int) -> str:
    return f"The answer from {server} is larger than {max_bytes} bytes; it was not read further."


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Each request to a server the tool declares, at an address the SSRF guard checked, over verified TLS."""

    def __init__(self, reach: Reach, max_bytes: int) -> None:
        self._reach = reach
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_target(self._reach, request.url)  # also here: whatever reaches the transport is checked
        if request.headers.get_list("host") != [request.url.netloc.decode("ascii")]:
            raise NetworkRefused(f"{self._reach.tool} was refused a request: its Host header is not the URL's "
                                 "host.")
        host, port = request.url.raw_host.decode("ascii"), request.url.port or 443
        try:
            addresses = await resolve_checked(host, port, allow_loopback=is_loopback_host(host))
        except NameNotResolved:
            # Not a refusal: the author declared the host, so saying it does not resolve tells a caller
            # nothing about private names; where it resolves to stays one answer for every address class.
            raise NetworkFailed(f"The request to {_server(request.url)} failed: the name does not resolve.") from None
        except AddressRefused as refused:
            logger.warning("tool %s: host %r %s", self._reach.tool, host, refused.reason)
            raise NetworkRefused(f"{_server(request.url)} was refused: {self._reach.tool} may reach public "
                                 "internet addresses only, and it does not resolve to those alone.") from None
        pool = httpcore.AsyncConnectionPool(ssl_context=_trust_store(), max_connections=1, retries=0,
                                            network_backend=PinnedBackend(tuple(a.compressed for a in addresses)))
        try:
            answer = await pool.handle_async_request(httpcore.Request(
                method=request.method,
                url=httpcore.URL(scheme=b"https", host=request.url.raw_host, port=port, target=request.url.raw_path),
                headers=request.headers.raw, content=request.stream, extensions=request.extensions))
        except BaseException:
            await pool.aclose()
            raise
        stream = _CappedBody(answer.stream, pool, self._max_bytes, _server(request.url))
        return httpx.Response(answer.status, headers=answer.headers, stream=stream, extensions=answer.extensions)


class _CappedBody(httpx.AsyncByteStream):
    """An answer's body that stops with :class:`ResponseTooLarge` past ``max_bytes``; closing it closes its pool."""

    def __init__(self, stream: Any, pool: httpcore.AsyncConnectionPool, max_bytes: int, server: str) -> None:
        self._stream, self._pool, self._max_bytes, self._server = stream, pool, max_bytes, server

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            received += len(chunk)
            if received > self._max_bytes:
                raise ResponseTooLarge(_too_large(self._server, self._max_bytes))
            yield chunk

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            await self._pool.aclose()


@functools.cache
def _trust_store() -> ssl.SSLContext:
    """The system's trust store (OpenSSL honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``); hostnames checked."""
    return ssl.create_default_context()


# The log line ------------------------------------------------------------------------------------


@dataclass
class _Trace:
    """What one request's log line says: never a header, a body or a query value."""

    tool: str
    method: str
    server: str = "(no server)"
    path: str = ""
    status: int | None = None
    bytes: int | None = None
    attempts: int = 0
    redirects: int = 0
    outcome: str = "cancelled"
    error: str | None = None

    def target(self, url: httpx.URL) -> None:
        self.server = _server(url)
        names = dict.fromkeys(name for name, _ in url.params.multi_items())
        self.path = _logged_path(url.path) + (("?" + "&".join(f"{name}=" for name in names)) if names else "")

    def log(self, seconds: float) -> None:
        fields = {"tool": self.tool, "method": self.method, "server": self.server, "path": self.path,
                  "status": self.status, "bytes": self.bytes, "duration_ms": round(seconds * 1000, 1),
                  "attempts": self.attempts, "redirects": self.redirects, "outcome": self.outcome}
        if self.error:
            fields["error"] = self.error
        level = logging.INFO if self.outcome == "ok" else logging.WARNING
        logger.log(level, "tool request %s %s: %s", self.method, self.server, self.outcome, extra=fields)


LOGGED_SEGMENT_CHARACTERS = 20  # a longer path segment may be a credential: /bot<token>/sendMessage


def _logged_path(path: str) -> str:
    """``path`` as a log line may show it: each segment longer than ``LOGGED_SEGMENT_CHARACTERS`` (a token,
    a signature, an opaque id) written as ``…``."""
    return "/".join("…" if len(segment) > LOGGED_SEGMENT_CHARACTERS else segment for segment in path.split("/"))
