"""Verified tokens are remembered, so that a client's repeated calls skip the signature check, and
the cache never lets through a token the full check would refuse.

In process, with an injected clock: a token is remembered under its SHA-256 (never the token), until
its ``exp`` and never past it, only while the key set that verified it is still the published one,
only when it was accepted; the cache holds a bounded number of tokens. Introspection answers (how
an issuer that introspects revokes its tokens) are remembered for at most a second.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from ringfence.refusals import InvalidToken
from ringfence.resource.introspection import REMEMBERED_SECONDS, IntrospectionVerifier
from ringfence.resource.tokens import CachedToken, ExpiringMap, JwtVerifier, TokenCache, token_key

ISSUER = "https://issuer.example"
AUDIENCE = "https://mcp.example/mcp"
START = 1_800_000_000.0

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Keys:
    """A key source whose published set a test replaces."""

    def __init__(self, *keys: ECKey) -> None:
        self.published = KeySet(list(keys))

    async def keys(self, kid: str | None) -> KeySet:
        return self.published


def new_key(kid: str = "k1") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, auto_kid=False)


def signed(key: ECKey, **claims: Any) -> str:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "client_id": "client-1", "iat": int(START),
            "exp": int(START) + 600, "scope": "notes:read"}
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, {**base, **claims}, key)


def verifier(keys: Keys, cache: TokenCache[CachedToken], *, leeway: int = 0) -> JwtVerifier:
    return JwtVerifier(issuer=ISSUER, audience=AUDIENCE, algorithms=("ES256",), keys=keys, leeway=leeway,
                       cache=cache)


def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature is checked from now on (each full verification decodes once)."""
    checked: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr("ringfence.resource.tokens.jwt.decode", counting)
    return checked


async def test_a_remembered_token_skips_the_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    clock = Clock()
    check = verifier(Keys(key), TokenCache(clock=clock))
    token = signed(key)
    checked = signature_checks(monkeypatch)
    first = await check.verify(token)
    clock.now += 300
    assert await check.verify(token) == first
    assert checked == [token]


async def test_a_remembered_token_is_refused_from_its_exp_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 7519 §4.1.4: not accepted on or after ``exp``; the cache answers until then, never past it."""
    key = new_key()
    clock = Clock()
    check = verifier(Keys(key), TokenCache(clock=clock))
    token = signed(key, exp=int(START) + 60)
    await check.verify(token)
    clock.now = START + 59.9
    await check.verify(token)
    clock.now = START + 60
    with pytest.raises(InvalidToken, match="expired"):
        await check.verify(token)


async def test_the_clock_leeway_never_extends_a_remembered_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``exp`` the token is checked in full again (the leeway is for the issuer's clock skew)."""
    key = new_key()
    clock = Clock()
    cache: TokenCache[CachedToken] = TokenCache(clock=clock)
    check = verifier(Keys(key), cache, leeway=30)
    token = signed(key, exp=int(START) + 60)
    await check.verify(token)
    checked = signature_checks(monkeypatch)
    clock.now = START + 70
    await check.verify(token)  # within the leeway: accepted by the full check, not by the cache
    assert checked == [token] and len(cache) == 0
    clock.now = START + 91
    with pytest.raises(InvalidToken, match="expired"):
        await check.verify(token)


async def test_refused_tokens_are_never_remembered() -> None:
    key, other = new_key(), new_key()
    clock = Clock()
    cache: TokenCache[CachedToken] = TokenCache(clock=clock)
    check = verifier(Keys(key), cache)
    for token in (signed(other), signed(key, exp=int(START) - 1), signed(key, aud="https://elsewhere.example")):
        for _ in range(2):
            with pytest.raises(InvalidToken):
                await check.verify(token)
    assert len(cache) == 0


async def test_a_remembered_token_is_checked_again_when_the_published_keys_change() -> None:
    """A key removed from the issuer's set refuses its tokens at once, remembered or not."""
    key = new_key("old")
    keys = Keys(key)
    check = verifier(keys, TokenCache(clock=Clock()))
    token = signed(key)
    await check.verify(token)
    keys.published = KeySet([new_key("new")])
    with pytest.raises(InvalidToken, match="unknown key"):
        await check.verify(token)


async def test_the_cache_files_a_token_under_its_hash_and_holds_nothing_of_the_token() -> None:
    key = new_key()
    cache: TokenCache[CachedToken] = TokenCache(clock=Clock())
    token = signed(key)
    await verifier(Keys(key), cache).verify(token)
    assert cache.get(token) is not None
    held = reachable_from(cache)
    assert token_key(token) in held
    signature = token.rsplit(".", 1)[1]
    for obj in held:
        if isinstance(obj, str | bytes):
            text = obj if isinstance(obj, str) else obj.decode("latin-1")
            assert token not in text and signature not in text


def reachable_from(root: object) -> list[object]:
    """Every object the cache holds, however deep (the clock and the key sets aside)."""
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | KeySet | ECKey | Clock):
            continue
        seen[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    return list(seen.values())


async def test_the_cache_holds_at_most_its_size_the_oldest_making_room() -> None:
    key = new_key()
    cache: TokenCache[CachedToken] = TokenCache(3, clock=Clock())
    check = verifier(Keys(key), cache)
    tokens = [signed(key, sub=f"user-{n}") for n in range(5)]
    for token in tokens:
        await check.verify(token)
    assert len(cache) == 3
    assert [cache.get(token) is not None for token in tokens] == [False, False, True, True, True]


def test_an_expiring_map_forgets_each_entry_at_its_time() -> None:
    clock = Clock(0)
    entries: ExpiringMap[str, int] = ExpiringMap(10, clock)
    entries.put("a", 1, until=5)
    entries.put("b", 2, until=0)  # already past: not kept
    assert (entries.get("a"), entries.get("b"), len(entries)) == (1, None, 1)
    clock.now = 5
    assert entries.get("a") is None and len(entries) == 0


# Introspection -----------------------------------------------------------------------------------


class Introspection:
    """An RFC 7662 endpoint in process: answers from ``active``, counts the questions."""

    def __init__(self, clock: Clock, *, lifetime: int = 600) -> None:
        self.active = True
        self.asked = 0
        self.exp = int(clock()) + lifetime

    def handler(self, _request: httpx.Request) -> httpx.Response:
        self.asked += 1
        if not self.active:
            return httpx.Response(200, json={"active": False})
        return httpx.Response(200, content=json.dumps({
            "active": True, "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "client_id": "client-1",
            "scope": "notes:read", "exp": self.exp}))


def introspecting(endpoint: Introspection, clock: Callable[[], float]) -> IntrospectionVerifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handler))
    return IntrospectionVerifier(url="https://issuer.example/introspect", client_id="rs", client_secret="s",
                                 issuer=ISSUER, audience=AUDIENCE, client=client, leeway=0,
                                 cache=TokenCache(clock=clock))


async def test_an_introspection_answer_is_remembered_for_at_most_a_second() -> None:
    """Introspection is how the issuer revokes: its revocation reaches every call within a second."""
    clock = Clock()
    endpoint = Introspection(clock)
    check = introspecting(endpoint, clock)
    first = await check.verify("opaque")
    clock.now += REMEMBERED_SECONDS - 0.01
    assert await check.verify("opaque") == first
    assert endpoint.asked == 1
    endpoint.active = False  # revoked at the issuer
    clock.now = START + REMEMBERED_SECONDS
    with pytest.raises(InvalidToken, match="not active"):
        await check.verify("opaque")
    with pytest.raises(InvalidToken, match="not active"):
        await check.verify("opaque")
    assert endpoint.asked == 3  # an inactive answer is never remembered


async def test_an_introspection_answer_is_never_remembered_past_the_tokens_exp() -> None:
    clock = Clock(START + 0.5)
    endpoint = Introspection(Clock(START), lifetime=1)
    check = introspecting(endpoint, clock)
    await check.verify("opaque")
    clock.now = START + 0.99
    await check.verify("opaque")
    assert endpoint.asked == 1
    clock.now = START + 1
    with pytest.raises(InvalidToken, match="expired"):
        await check.verify("opaque")
    assert endpoint.asked == 2
