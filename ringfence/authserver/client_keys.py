"""Where a ``private_key_jwt`` client's public keys come from: its published ``jwks``, or its ``jwks_uri``.

A ``jwks_uri`` is chosen by the client, so it is fetched exactly as metadata documents are
(:class:`~ringfence.authserver.cimd.GuardedJsonFetcher`: public addresses only, pinned, no redirects,
size-capped, one deadline, cached by HTTP cache headers, failures never cached). An assertion
signed with a key the cached set does not have makes one fresh fetch (the client may have rotated
its keys), at most once per :data:`REFETCH_SECONDS` per URL, so that unknown ``kid`` values cannot
make this server hammer a key server.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from joserfc.jwk import KeySet

from ringfence.authserver.cimd import (
    ClientMetadataBusy,
    ClientMetadataError,
    GuardedJsonFetcher,
    decode_json,
    is_web_url,
)
from ringfence.authserver.public_keys import KeySetRefused, SigningKey, public_key_set, signing_key

REFETCH_SECONDS = 30.0
MAX_REMEMBERED_URLS = 1024


class ClientKeysUnavailable(Exception):
    """The client's key set could not be fetched or used (the reason is logged, never shown)."""


class ClientKeysBusy(ClientKeysUnavailable):
    """Not fetched: as many documents as allowed are being fetched (the client may retry shortly)."""


class ClientKeySetFetcher(GuardedJsonFetcher[KeySet]):
    """Fetches and caches the key sets at clients' ``jwks_uri``, by the rules of metadata documents."""

    what = "client key set"
    refused_url = "The client's jwks_uri is not an https URL."

    def accepts(self, url: str) -> bool:
        return "#" not in url and is_web_url(url, allow_loopback=self._allow_loopback)

    def parse(self, url: str, body: bytes) -> KeySet:
        try:
            return public_key_set(decode_json(body))
        except KeySetRefused as refused:
            raise ClientMetadataError(f"The client's jwks_uri document {refused}.") from None


class ClientKeys:
    """The key that may verify a client's assertion, from its inline ``jwks`` or its ``jwks_uri``."""

    def __init__(self, fetcher: ClientKeySetFetcher, *, refetch_seconds: float = REFETCH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fetcher = fetcher
        self.refetch_seconds = refetch_seconds
        self._clock = clock
        self._refetched: OrderedDict[str, float] = OrderedDict()  # jwks_uri -> when last fetched afresh

    async def key_for(self, jwks: Mapping[str, Any] | None, jwks_uri: str | None, kid: object,
                      alg: str) -> SigningKey | None:
        """The published key for ``kid`` and ``alg``, or ``None`` when the client has no such key.

        Raises :class:`ClientKeysUnavailable` when the ``jwks_uri`` cannot be fetched or is not a
        set of public signing keys (fail closed), :class:`ClientKeysBusy` when fetching is at its bounds.
        """
        if jwks is not None:
            try:
                return signing_key(public_key_set(jwks), kid, alg)  # checked when registered, and again here
            except KeySetRefused:
                raise ClientKeysUnavailable("the published jwks is not a set of public signing keys") from None
        if jwks_uri is None:
            return None
        key = signing_key(await self._fetch(jwks_uri, fresh=False), kid, alg)
        if key is None and self._may_refetch(jwks_uri):  # rotated keys: one fresh look, rate-limited
            key = signing_key(await self._fetch(jwks_uri, fresh=True), kid, alg)
        return key

    async def _fetch(self, url: str, *, fresh: bool) -> KeySet:
        try:
            return await self.fetcher.fetch(url, fresh=fresh)
        except ClientMetadataBusy as busy:
            raise ClientKeysBusy(str(busy)) from None
        except ClientMetadataError as refused:
            raise ClientKeysUnavailable(str(refused)) from None

    def _may_refetch(self, url: str) -> bool:
        now = self._clock()
        last = self._refetched.get(url)
        if last is not None and now - last < self.refetch_seconds:
            return False
        self._refetched[url] = now
        self._refetched.move_to_end(url)
        while len(self._refetched) > MAX_REMEMBERED_URLS:
            self._refetched.popitem(last=False)
        return True
