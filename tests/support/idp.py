"""A small external identity provider for tests: a JWKS endpoint, an RFC 7662 endpoint, a minter.

It runs as a real HTTP server on loopback (uvicorn in a thread) so that ringfence fetches keys
and introspects tokens exactly as it would from Auth0 or Keycloak.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import warnings
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

INTROSPECTION_CLIENT = ("resource-server", "introspection-secret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TestIdentityProvider:
    """Signs tokens with ES256, RS256 and EdDSA keys and publishes their public halves."""

    __test__ = False

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.jwks_url = f"{self.issuer}/jwks.json"
        self.introspection_url = f"{self.issuer}/introspect"
        self.keys = {
            "ES256": ECKey.generate_key("P-256", parameters={"kid": "es-1", "alg": "ES256", "use": "sig"}),
            "RS256": RSAKey.generate_key(2048, parameters={"kid": "rs-1", "alg": "RS256", "use": "sig"}),
            "EdDSA": OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1", "alg": "EdDSA", "use": "sig"}),
        }
        self.unpublished = ECKey.generate_key("P-256", parameters={"kid": "es-1", "alg": "ES256"})
        self.jwks_fetches = 0
        self.jwks_available = True
        self.opaque_tokens: dict[str, dict[str, Any]] = {}
        self._server: uvicorn.Server | None = None

    # Tokens ---------------------------------------------------------------------------------

    def claims(self, audience: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": audience,
            "client_id": "client-1",
            "scope": "",
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_hex(8),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, audience: str, *, alg: str = "ES256", header: dict | None = None, key: Any = None,
              **claims: Any) -> str:
        """A signed access token for ``audience``; keyword arguments override claims (None drops one)."""
        signing_key = key or self.keys[alg]
        protected = {"alg": alg, "typ": "at+jwt", "kid": signing_key.kid, **(header or {})}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode(protected, self.claims(audience, **claims), signing_key, algorithms=[alg])

    def opaque_token(self, audience: str, *, active: bool = True, **claims: Any) -> str:
        token = secrets.token_urlsafe(24)
        self.opaque_tokens[token] = {"active": active, **self.claims(audience, **claims)}
        return token

    # Server ---------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        async def jwks(_: Request) -> Response:
            self.jwks_fetches += 1
            if not self.jwks_available:
                return Response(status_code=503)
            return JSONResponse({"keys": [key.as_dict(private=False) for key in self.keys.values()]})

        async def introspect(request: Request) -> Response:
            import base64

            expected = base64.b64encode(":".join(INTROSPECTION_CLIENT).encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            form = await request.form()
            record = self.opaque_tokens.get(str(form.get("token")))
            return JSONResponse(record if record else {"active": False})

        return Starlette(routes=[Route("/jwks.json", jwks), Route("/introspect", introspect, methods=["POST"])])

    def start(self) -> None:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test identity provider did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def new_subject() -> str:
    """A user id no other test uses, so tests sharing one server never see each other's data."""
    return f"user-{secrets.token_hex(6)}"
