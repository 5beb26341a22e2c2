"""``private_key_jwt`` as a client does it (RFC 7523 §2.2): its key pair, its published keys, its assertions.

:class:`ClientKey` holds a client's private key; :meth:`ClientKey.assertion` signs a client
assertion with sensible claims that any test may change (``None`` leaves a claim out);
:func:`unsigned` and :func:`hmac_signed` make the forgeries a server must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@dataclass
class ClientKey:
    """A client's signing key; ``kid`` names it in the published set and in assertion headers."""

    key: ECKey | RSAKey
    alg: str = "ES256"

    @classmethod
    def ec(cls, kid: str | None = None) -> ClientKey:
        return cls(ECKey.generate_key("P-256", parameters={"kid": kid or secrets.token_hex(4)}), "ES256")

    @classmethod
    def rsa(cls, kid: str | None = None) -> ClientKey:
        return cls(RSAKey.generate_key(2048, parameters={"kid": kid or secrets.token_hex(4)}), "PS256")

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def private_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=True))

    def public_pem(self) -> bytes:
        return self.key.raw_value.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    def claims(self, client_id: str, audience: str | list[str], **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                                  "exp": now + 60, "jti": secrets.token_urlsafe(16)}
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def assertion(self, client_id: str, audience: str | list[str], *, header: dict[str, Any] | None = None,
                  **overrides: Any) -> str:
        """A signed client assertion (RFC 7523 §3): iss = sub = ``client_id``, 60 s life, fresh ``jti``."""
        return jwt.encode({"alg": self.alg, "kid": self.kid, **(header or {})},
                          self.claims(client_id, audience, **overrides), self.key, algorithms=[self.alg])


def jwks(*keys: ClientKey) -> dict[str, Any]:
    """The JWK Set a client publishes: public keys only."""
    return {"keys": [key.public_jwk() for key in keys]}


def unsigned(claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWT (RFC 7519 §6): no signature at all."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}."


def hmac_signed(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 JWT whose "secret" is ``secret``: the key-confusion forgery when that is a public key."""
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': kid})}.{b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def assertion_form(assertion: str) -> dict[str, str]:
    """The two token-request parameters of RFC 7523 §2.2."""
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
