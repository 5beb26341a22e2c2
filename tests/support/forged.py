"""Tokens no honest identity provider would mint, built by hand (RFC 7515 compact serialization)."""

from __future__ import annotations

import base64
import json
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey


def b64url(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """``alg: none`` with an empty signature (RFC 7519 §6: an Unsecured JWT)."""
    return f"{b64url({'alg': 'none', 'typ': 'at+jwt'})}.{b64url(claims)}."


def hs256_token(claims: dict[str, Any], *, kid: str) -> str:
    """HMAC-signed with a secret the attacker chose, naming one of the issuer's key ids."""
    key = OctKey.import_key(b"attacker-chosen-shared-secret-0123456789", parameters={"kid": kid})
    return jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, key, algorithms=["HS256"])


def with_header(token: str, **header: Any) -> str:
    """The same payload and signature under a rewritten protected header."""
    encoded_header, payload, signature = token.split(".")
    original = json.loads(base64.urlsafe_b64decode(encoded_header + "=" * (-len(encoded_header) % 4)))
    return f"{b64url({**original, **header})}.{payload}.{signature}"
