"""OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), fetched safely.

A client whose ``client_id`` is an https URL (ChatGPT sends ``https://chatgpt.com/oauth/<id>/client.json``)
publishes its registration there; the authorization server fetches and checks it. The URL is chosen
by whoever starts an authorization request, so the fetch is a server-side request forgery surface
(MCP Security Best Practices, SSRF). Here:

1. the URL must be a client identifier URL (CIMD §3), https only;
2. its host is resolved once, and every resolved address must be globally routable (``ipaddress``
   properties, not hand-written ranges); IP-literal hosts are checked the same way, before any I/O;
3. the connection goes to that pinned address only, never through a second lookup (no DNS
   rebinding), while the Host header, TLS SNI and certificate check still use the URL's host name
   (2 and 3 are the SSRF guard every outbound request shares: ringfence/netguard.py);
4. no redirects, one overall deadline, a byte cap enforced while streaming, HTTP 200 only;
5. the document must be a JSON object whose ``client_id`` is the URL exactly, without shared secrets;
6. good documents are cached by their HTTP cache headers; failures never are (CIMD §4.4);
7. fetches are bounded, in all and per host: one past the bound is refused at once
   (:class:`ClientMetadataBusy`), never queued, so slow documents cannot pile up;
8. a host that does not resolve and one that resolves to a private address get the same message,
   so the refusal does not tell a stranger which internal names exist (the log tells the operator).

Everything here runs on the event loop (the name lookup in the loop's resolver threads): no request
worker thread ever waits on a document.

The same guarded fetching (2-4, 6-8) serves a ``private_key_jwt`` client's ``jwks_uri``
(:mod:`ringfence.authserver.client_keys`): :class:`GuardedJsonFetcher` is the shared part.

Loopback is reachable only with ``allow_loopback=True``, an explicit development/test switch
(latest CIMD draft, SSRF: the loopback exception "MUST NOT" be used in production).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import ssl
import time
import typing
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, urlsplit

import httpcore

from ringfence.authserver import strict_json
from ringfence.authserver.client_name import client_name_problem
from ringfence.authserver.public_keys import KeySetRefused, check_key_set_shape, public_key_set
from ringfence.netguard import (
    AddressRefused,
    IPAddress,
    PinnedBackend,
    ip_literal,
    is_loopback_host,
    may_connect,
    resolve_checked,
)
from ringfence.netguard import is_public_address as is_public_address  # the SSRF guard's classifier, re-exported

logger = logging.getLogger("ringfence.authserver")
T = TypeVar("T")

MAX_URL_CHARS = 2048
MAX_REDIRECT_URIS = 20
MAX_TYPE_VALUES = 10
MAX_TYPE_VALUE_CHARS = 128
MAX_SCOPE_CHARS = 1024
MAX_CACHE_ENTRIES = 1024

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
# CIMD §4.1: no method "based around a shared symmetric secret".
_SHARED_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
_AUTH_METHODS = frozenset({"none", "private_key_jwt"})

NOT_A_CLIENT_ID_URL = "The client_id is not a valid client metadata document URL."
HOST_NOT_PUBLIC = "The client metadata document URL's host must resolve to public internet addresses only."
BUSY = "Too many client metadata documents are being fetched right now. Try again in a moment."
FETCH_FAILED = "The client metadata document could not be fetched."
TIMED_OUT = "The client metadata document could not be fetched in time."
REDIRECTED = "The client metadata document URL answered with a redirect, which is not followed."
NOT_OK = "The client metadata document URL did not answer with HTTP 200."
NOT_JSON = "The client metadata document is not valid JSON."
NOT_AN_OBJECT = "The client metadata document is not a JSON object."
CLIENT_ID_MISMATCH = "The client metadata document's client_id does not match its URL."
HAS_SHARED_CREDENTIAL = "The client metadata document must not contain a client secret."


class ClientMetadataError(Exception):
    """A client metadata document that could not be used; the message is safe for ``error_description``."""


class ClientMetadataBusy(ClientMetadataError):
    """Refused without fetching: as many documents as allowed (in all, or from the host) are being fetched."""


@dataclass(frozen=True)
class ClientMetadataDocument:
    """The checked registration a client publishes at its client_id URL."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str  # "none" or "private_key_jwt"
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    client_uri: str | None
    logo_uri: str | None
    scope: str | None
    jwks_uri: str | None
    jwks: dict[str, Any] | None = field(default=None, compare=False, hash=False)  # checked public keys


# URLs ----------------------------------------------------------------------------------------


def _split_url(value: object) -> SplitResult | None:
    """A plain ASCII absolute URL without userinfo or control characters, or ``None``."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        return None
    if not value.isascii() or any(char <= " " or char in "\x7f\\" for char in value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if "@" in parts.netloc or not parts.hostname:
        return None
    if not value.startswith(f"{parts.scheme}://"):  # lower-case scheme, and an authority
        return None
    return parts


def is_client_id_url(value: str, *, allow_loopback: bool = False) -> bool:
    """Whether ``value`` is a client identifier URL to fetch (CIMD §3).

    https, a path other than ``/``, no fragment, no userinfo, no dot segments. With ``allow_loopback``
    (development only), ``http://`` is also accepted for ``localhost`` and loopback IP literals.
    """
    parts = _split_url(value)
    if parts is None or "#" in value:  # CIMD §3: MUST NOT contain a fragment component
        return False
    if parts.scheme != "https" and not (
        parts.scheme == "http" and allow_loopback and is_loopback_host(parts.hostname or "")
    ):
        return False  # CIMD §3: MUST have an "https" scheme
    if parts.path in ("", "/"):
        return False  # CIMD §3: MUST contain a path component (and "/" is NOT RECOMMENDED)
    segments = parts.path.lower().replace("%2e", ".").split("/")
    return "." not in segments and ".." not in segments  # CIMD §3: no single- or double-dot segments


def _is_redirect_uri(value: object) -> bool:
    """MCP: redirect URIs MUST be either localhost URLs or use HTTPS; OAuth 2.1 §2.3: absolute, no fragment."""
    if not isinstance(value, str) or "#" in value:
        return False
    parts = _split_url(value)
    if parts is None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")  # RFC 8252 §7.3


def is_web_url(value: object, *, allow_loopback: bool) -> bool:
    """An https URL (http on a loopback host only with ``allow_loopback``), as a document may link to."""
    parts = _split_url(value)
    if parts is None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_loopback and is_loopback_host(parts.hostname or "")


# Documents -----------------------------------------------------------------------------------


def _optional_url(document: dict[str, Any], name: str, *, allow_loopback: bool) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not is_web_url(value, allow_loopback=allow_loopback):
        raise ClientMetadataError(f"The client metadata document's {name} must be an https URL.")
    return value


def _type_list(document: dict[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        return default  # RFC 7591 §2: grant_types defaults to authorization_code, response_types to code
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_TYPE_VALUES
        or not all(isinstance(item, str) and 0 < len(item) <= MAX_TYPE_VALUE_CHARS for item in value)
    ):
        raise ClientMetadataError(f"The client metadata document's {name} must be a short list of strings.")
    return tuple(value)


def _client_name(document: dict[str, Any]) -> str:
    name = document.get("client_name")
    if name is None:
        raise ClientMetadataError("The client metadata document needs a client_name.")
    problem = client_name_problem(name)
    if problem is not None:
        raise ClientMetadataError(f"The client metadata document's client_name {problem}.")
    return typing.cast(str, name)


def _redirect_uris(document: dict[str, Any]) -> tuple[str, ...]:
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise ClientMetadataError("The client metadata document needs a non-empty redirect_uris list.")
    if len(uris) > MAX_REDIRECT_URIS:
        raise ClientMetadataError(f"The client metadata document lists more than {MAX_REDIRECT_URIS} redirect_uris.")
    if not all(_is_redirect_uri(uri) for uri in uris):
        raise ClientMetadataError(
            "Every redirect URI in the client metadata document must be https, "
            "or http on a loopback host, and have no fragment."
        )
    return tuple(uris)


def _auth_method(document: dict[str, Any], jwks_uri: str | None) -> str:
    """``none`` or ``private_key_jwt``; the latter with its public keys published one way, inline or by URL."""
    method = document.get("token_endpoint_auth_method", "none")
    if not isinstance(method, str):
        raise ClientMetadataError("The client metadata document's token_endpoint_auth_method is not supported.")
    if method in _SHARED_SECRET_METHODS or method.startswith("client_secret"):
        # CIMD §4.1: token_endpoint_auth_method MUST NOT be a shared-secret method.
        raise ClientMetadataError("The client metadata document must not use a client-secret authentication method.")
    if method not in _AUTH_METHODS:
        raise ClientMetadataError("The client metadata document's token_endpoint_auth_method is not supported.")
    if method == "private_key_jwt":
        if jwks_uri is not None and document.get("jwks") is not None:
            # RFC 7591 §2: "jwks_uri" and "jwks" MUST NOT both be present.
            raise ClientMetadataError("The client metadata document must not have both jwks and jwks_uri.")
        if jwks_uri is None and document.get("jwks") is None:
            raise ClientMetadataError("The client metadata document uses private_key_jwt without jwks or a jwks_uri.")
    return method


def _checked_jwks(document: dict[str, Any]) -> dict[str, Any] | None:
    """The document's inline ``jwks``: public keys only, and usable signing keys for ``private_key_jwt``."""
    jwks = document.get("jwks")
    if jwks is None:
        return None
    try:
        if document.get("token_endpoint_auth_method") == "private_key_jwt":
            public_key_set(jwks)
        else:
            check_key_set_shape(jwks)
    except KeySetRefused as refused:
        raise ClientMetadataError(f"The client metadata document's jwks {refused}.") from None
    return typing.cast(dict[str, Any], jwks)


def _scope(document: dict[str, Any]) -> str | None:
    scope = document.get("scope")
    if scope is None or scope == "":
        return None
    if (
        not isinstance(scope, str)
        or len(scope) > MAX_SCOPE_CHARS
        or not all(_SCOPE_TOKEN.match(token) for token in scope.split(" "))
    ):
        raise ClientMetadataError("The client metadata document's scope is not a list of valid scope tokens.")
    return scope


def parse_document(client_id: str, document: object, *, allow_loopback: bool = False) -> ClientMetadataDocument:
    """Check a decoded document fetched from ``client_id``; raises :class:`ClientMetadataError`."""
    if not isinstance(document, dict):
        raise ClientMetadataError(NOT_AN_OBJECT)  # MCP: MUST validate the document is valid JSON
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientMetadataError(HAS_SHARED_CREDENTIAL)  # CIMD §4.1: client_secret(_expires_at) MUST NOT be used
    # CIMD §4.1 (simple string comparison, RFC 3986 §6.2.1); MCP: MUST match the URL exactly.
    if document.get("client_id") != client_id:
        raise ClientMetadataError(CLIENT_ID_MISMATCH)
    jwks = _checked_jwks(document)
    jwks_uri = _optional_url(document, "jwks_uri", allow_loopback=allow_loopback)
    return ClientMetadataDocument(
        client_id=client_id,
        client_name=_client_name(document),
        redirect_uris=_redirect_uris(document),
        token_endpoint_auth_method=_auth_method(document, jwks_uri),
        grant_types=_type_list(document, "grant_types", ("authorization_code",)),
        response_types=_type_list(document, "response_types", ("code",)),
        client_uri=_optional_url(document, "client_uri", allow_loopback=allow_loopback),
        logo_uri=_optional_url(document, "logo_uri", allow_loopback=allow_loopback),
        scope=_scope(document),
        jwks_uri=jwks_uri,
        jwks=jwks,
    )


def decode_json(body: bytes) -> object:
    """I-JSON (RFC 7493: UTF-8, unique names, no unpaired surrogates), no NaN, bounded nesting;
    anything else raises :class:`ClientMetadataError`."""
    try:
        return strict_json.decode(body)
    except strict_json.JsonRefused:
        raise ClientMetadataError(NOT_JSON) from None


# Caching -------------------------------------------------------------------------------------


def cache_lifetime(
    cache_control: str | None,
    *,
    age: str | None = None,
    expires: str | None = None,
    default: int,
    maximum: int,
) -> int:
    """Seconds a fetched document may be reused (RFC 9111 §4.2), capped at ``maximum``.

    ``no-store`` and ``no-cache`` (never revalidated here) mean 0; ``max-age`` wins over
    ``Expires``; neither means ``default``; a malformed value means 0.
    """
    directives: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        value = value.strip().strip('"') if value else None
        if name in directives and directives[name] != value:
            return 0  # RFC 9111 §4.2.1: conflicting directives are treated as stale
        directives[name] = value
    if "no-store" in directives or "no-cache" in directives:
        return 0
    if "max-age" in directives:
        max_age = directives["max-age"]
        if max_age is None or not max_age.isdigit():
            return 0
        lifetime = int(max_age)
    elif expires is not None:
        try:
            lifetime = int(email.utils.parsedate_to_datetime(expires).timestamp() - time.time())
        except (TypeError, ValueError, IndexError):
            return 0  # RFC 9111 §5.3: an invalid Expires (such as "0") means already expired
    else:
        lifetime = default
    if age is not None and age.strip().isdigit():
        lifetime -= int(age)  # RFC 9111 §4.2.3: time already spent in caches upstream
    return max(0, min(lifetime, maximum))


# Fetching ------------------------------------------------------------------------------------


class GuardedJsonFetcher(Generic[T]):
    """Fetches, checks and caches JSON documents at URLs a client chose, by rules 2-4 and 6-8 of the module
    docstring; a subclass says which URLs it fetches (:meth:`accepts`) and checks a body (:meth:`parse`).

    ``allow_loopback`` is for development and tests only: it lets ``http://127.0.0.1``-style
    URLs through and lets any host resolve to loopback. Private and link-local addresses
    stay refused either way. At most ``max_fetches`` documents are fetched at once, at most
    ``max_fetches_per_host`` from one host; concurrent callers for one URL share one fetch.
    Every refusal is a :class:`ClientMetadataError`.
    """

    what = "document"  # as the log names what is fetched
    refused_url = NOT_A_CLIENT_ID_URL  # the refusal of a URL :meth:`accepts` does not

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        timeout: float = 5.0,
        max_bytes: int = 16 * 1024,
        max_cache_seconds: int = 86400,
        default_cache_seconds: int = 300,
        ssl_context: ssl.SSLContext | None = None,
        max_fetches: int = 32,
        max_fetches_per_host: int = 4,
    ) -> None:
        self._allow_loopback = allow_loopback
        self._max_fetches = max_fetches
        self._max_fetches_per_host = max_fetches_per_host
        self._hosts: Counter[str] = Counter()  # fetches in flight, per host
        self._timeout = timeout
        self._max_bytes = max_bytes  # CIMD §6.6: limit the response size (5 KB recommended)
        self._max_cache_seconds = max_cache_seconds
        self._default_cache_seconds = default_cache_seconds
        self._ssl_context = ssl_context  # None: httpcore's default (certifi) trust store
        self._cache: dict[str, tuple[float, T]] = {}
        self._inflight: dict[str, asyncio.Task[T]] = {}
        self._closed = False

    async def __aenter__(self) -> typing.Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def accepts(self, url: str) -> bool:
        """Whether ``url`` is one this fetcher may fetch (checked before any I/O)."""
        raise NotImplementedError

    def parse(self, url: str, body: bytes) -> T:
        """The checked value of the body fetched from ``url``; raises :class:`ClientMetadataError`."""
        raise NotImplementedError

    async def fetch(self, client_id: str, *, fresh: bool = False) -> T:
        """The checked document at ``client_id``, from cache when fresh (never with ``fresh``: a new
        fetch, or one already in flight); raises :class:`ClientMetadataError`."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if not self.accepts(client_id):
            raise ClientMetadataError(self.refused_url)
        cached = self._cache.get(client_id)
        if cached is not None:
            if cached[0] > time.monotonic() and not fresh:
                return cached[1]
            del self._cache[client_id]
        task = self._inflight.get(client_id)
        if task is None:  # concurrent callers for one URL share one request
            host = typing.cast(str, urlsplit(client_id).hostname)
            self._admit(client_id, host)
            task = asyncio.create_task(self._fetch_and_cache(client_id))
            self._inflight[client_id] = task
            self._hosts[host] += 1
            task.add_done_callback(lambda done: self._forget(client_id, host, done))
        return await asyncio.shield(task)

    def _admit(self, client_id: str, host: str) -> None:
        """Refuse at once a fetch past the bounds: a fetch is never queued behind slow documents."""
        if len(self._inflight) >= self._max_fetches or self._hosts[host] >= self._max_fetches_per_host:
            logger.info("%s %r refused: %d fetches in flight, %d from its host",
                        self.what, client_id, len(self._inflight), self._hosts[host])
            raise ClientMetadataBusy(BUSY)

    async def aclose(self) -> None:
        """Cancels fetches in flight and drops the cache."""
        self._closed = True
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        self._cache.clear()

    def _forget(self, client_id: str, host: str, task: asyncio.Task[T]) -> None:
        if self._inflight.get(client_id) is task:
            del self._inflight[client_id]
        self._hosts[host] -= 1
        if self._hosts[host] <= 0:
            del self._hosts[host]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited any more is not reported as lost

    async def _fetch_and_cache(self, client_id: str) -> T:
        try:
            document, lifetime = await self._fetch_uncached(client_id)
        except ClientMetadataError as exc:
            logger.info("%s %r refused: %s", self.what, client_id, exc)
            raise  # CIMD §4.4: error responses and invalid documents are never cached
        if lifetime > 0:
            self._store(client_id, document, lifetime)
        return document

    def _store(self, client_id: str, document: T, lifetime: int) -> None:
        now = time.monotonic()
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            for key in [key for key, (expiry, _) in self._cache.items() if expiry <= now]:
                del self._cache[key]
            while len(self._cache) >= MAX_CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[client_id] = (now + lifetime, document)

    async def _fetch_uncached(self, client_id: str) -> tuple[T, int]:
        parts = urlsplit(client_id)
        host = typing.cast(str, parts.hostname)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = ip_literal(host)
        if literal is not None and not may_connect(literal, allow_loopback=self._allow_loopback):
            raise ClientMetadataError(HOST_NOT_PUBLIC)  # refused before any I/O
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._resolve(host, port)
                headers, body = await self._get(client_id, parts, tuple(address.compressed for address in addresses))
        except TimeoutError:
            raise ClientMetadataError(TIMED_OUT) from None
        document = self.parse(client_id, body)
        lifetime = cache_lifetime(
            _header(headers, b"cache-control"),
            age=_header(headers, b"age"),
            expires=_header(headers, b"expires"),
            default=self._default_cache_seconds,
            maximum=self._max_cache_seconds,
        )
        return document, lifetime

    async def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """The host's addresses, looked up exactly once (ringfence/netguard.py); refused if any one may not
        be reached, with the same answer whether the name does not resolve or resolves privately."""
        try:
            return await resolve_checked(host, port, allow_loopback=self._allow_loopback)
        except AddressRefused as refused:
            logger.info("%s host %r %s", self.what, host, refused.reason)
            raise ClientMetadataError(HOST_NOT_PUBLIC) from None  # no name probing

    async def _get(
        self, client_id: str, parts: SplitResult, addresses: tuple[str, ...]
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        host = typing.cast(str, parts.hostname)
        target = client_id[len(parts.scheme) + 3 + len(parts.netloc) :]  # path and query, byte for byte
        url = httpcore.URL(scheme=parts.scheme, host=host, port=parts.port, target=target)
        request_headers = [
            (b"Host", parts.netloc.encode("ascii")),
            (b"Accept", b"application/json"),
            (b"Accept-Encoding", b"identity"),
            (b"User-Agent", b"ringfence-authserver"),
        ]
        timeouts = {"connect": self._timeout, "read": self._timeout, "write": self._timeout, "pool": self._timeout}
        try:
            async with (
                httpcore.AsyncConnectionPool(
                    ssl_context=self._ssl_context,
                    network_backend=PinnedBackend(addresses),
                    max_connections=1,
                    retries=0,
                ) as pool,
                pool.stream("GET", url, headers=request_headers, extensions={"timeout": timeouts}) as response,
            ):
                # CIMD: MUST be served with 200 OK, and redirects MUST NOT be followed (httpcore never does).
                if 300 <= response.status < 400:
                    raise ClientMetadataError(REDIRECTED)
                if response.status != 200:
                    raise ClientMetadataError(NOT_OK)
                headers = response.headers
                encoding = _header(headers, b"content-encoding")
                if encoding not in (None, "identity"):
                    raise ClientMetadataError(FETCH_FAILED)  # asked for identity; no decompression bombs
                length = _header(headers, b"content-length")
                if length is not None and (not length.isdigit() or int(length) > self._max_bytes):
                    raise ClientMetadataError(self._too_large())
                body = bytearray()
                async for chunk in response.aiter_stream():
                    body += chunk
                    if len(body) > self._max_bytes:  # CIMD §6.6: stop reading at the cap
                        raise ClientMetadataError(self._too_large())
                return headers, bytes(body)
        except ClientMetadataError:
            raise
        except (httpcore.TimeoutException, TimeoutError):
            raise ClientMetadataError(TIMED_OUT) from None
        except Exception as exc:  # TLS, connection, protocol: never shown to the client
            logger.info("%s %r not fetched: %s", self.what, client_id, type(exc).__name__)
            raise ClientMetadataError(FETCH_FAILED) from None

    def _too_large(self) -> str:
        return f"The {self.what} is larger than {self._max_bytes} bytes."


class ClientMetadataFetcher(GuardedJsonFetcher[ClientMetadataDocument]):
    """Fetches, checks and caches client metadata documents; see the module docstring for the rules."""

    what = "client metadata document"

    def accepts(self, url: str) -> bool:
        return is_client_id_url(url, allow_loopback=self._allow_loopback)

    def parse(self, url: str, body: bytes) -> ClientMetadataDocument:
        return parse_document(url, decode_json(body), allow_loopback=self._allow_loopback)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """Every value of one response header, comma-joined (RFC 9110 §5.3), or ``None``."""
    values = [value.decode("latin-1") for key, value in headers if key.lower() == name]
    return ", ".join(values) if values else None
