"""A login provider that can be told to misbehave, for the answers a correct provider never gives.

It speaks OpenID Connect (discovery, an authorization endpoint that answers at once, token, JWKS,
userinfo) and GitHub's OAuth flow and REST API as GitHub documents them (docs.github.com: "Authorizing
OAuth apps", "REST API endpoints for users", "…for emails", "…for organizations"), since github.com
cannot be reached from the test machines. It runs as a real HTTP server on loopback (uvicorn in a
thread). ``faults`` changes what its next answers say: a wrong ``aud``, ``nonce``, ``iss``, ``azp``, an
``alg`` of ``none`` or HS256, an expired token, another key, another issuer in discovery, RFC 9207
``iss`` of another provider, a 500. Its GitHub gives expiring user tokens with refresh tokens (as GitHub
Apps do) when told ``expiring=`` seconds, rotates them on refresh, and deletes one on "Delete an app token".
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import warnings
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.idp import free_port

CLIENT = ("standin-client", "standin-secret")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LoginStandIn:
    """One OpenID provider at ``issuer`` and GitHub under ``github_url`` / ``github_api_url``."""

    __test__ = False

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.github_url = f"{self.issuer}/github"
        self.github_api_url = f"{self.issuer}/github-api"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "standin-1", "use": "sig", "alg": "RS256"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "standin-1", "use": "sig", "alg": "RS256"})
        self.faults: set[str] = set()
        self.person: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, str]] = []  # every authorization request's query
        self.github_tokens: dict[str, str] = {}  # live GitHub access token -> its scope
        self.github_refresh_tokens: dict[str, str] = {}  # live GitHub refresh token -> its scope
        self.expiring: int | None = None  # seconds GitHub's user tokens live; None: they do not expire
        self._server: uvicorn.Server | None = None

    # What the person is -------------------------------------------------------------------------

    def be(self, *, sub: str = "standin-user-1", email: str | None = "carol@example.com", verified: bool = True,
           github_id: int = 4242, login: str = "carol", orgs: tuple[str, ...] = ("acme",),
           expiring: int | None = None) -> None:
        self.person = {"sub": sub, "email": email, "email_verified": verified, "github_id": github_id,
                       "login": login, "orgs": orgs}
        self.faults = set()
        self.expiring = expiring

    # OpenID Connect -----------------------------------------------------------------------------

    async def discovery(self, _: Request) -> Response:
        if "down" in self.faults:
            return Response("upstream trouble", 500)
        return JSONResponse({
            "issuer": self.issuer + "/elsewhere" if "discovery_issuer" in self.faults else self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize", "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks", "userinfo_endpoint": f"{self.issuer}/userinfo",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            "authorization_response_iss_parameter_supported": True,
            "code_challenge_methods_supported": ["S256"],
        })

    async def jwks(self, _: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        """Signs the person in at once and sends them back with a code."""
        query = dict(request.query_params)
        self.requests.append(query)
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        answer = {"code": code, "state": query.get("state", ""),
                  "iss": "https://other.example" if "response_iss" in self.faults else self.issuer}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(answer)}", 302)

    def _redeemed(self, form: dict[str, str]) -> dict[str, Any] | None:
        request = self.codes.pop(form.get("code", ""), None)
        if request is None or form.get("redirect_uri") != request["redirect_uri"]:
            return None
        challenge = b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        return request if challenge == request.get("code_challenge") else None  # RFC 7636 §4.6

    async def token(self, request: Request) -> Response:
        if "down" in self.faults:
            return Response("upstream trouble", 500)
        expected = "Basic " + base64.b64encode(f"{CLIENT[0]}:{CLIENT[1]}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, 401)
        authorization = self._redeemed(dict(await request.form()))
        if authorization is None:
            return JSONResponse({"error": "invalid_grant"}, 400)
        return JSONResponse({"access_token": "standin-access-" + secrets.token_urlsafe(8), "token_type": "Bearer",
                             "id_token": self.id_token(authorization)})

    def id_token(self, authorization: dict[str, str]) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.person["sub"], "aud": CLIENT[0], "iat": now, "exp": now + 300,
                  "nonce": authorization.get("nonce"), "auth_time": now}
        if authorization.get("max_age") == "0" and "stale_auth_time" in self.faults:
            claims["auth_time"] = now - 3600
        faults = self.faults
        claims |= {"aud": "someone-else"} if "aud" in faults else {}
        claims |= {"aud": [CLIENT[0], "someone-else"]} if "no_azp" in faults else {}
        claims |= {"azp": "someone-else"} if "azp" in faults else {}
        claims |= {"nonce": "not-the-nonce"} if "nonce" in faults else {}
        claims |= {"iss": "https://other.example"} if "iss" in faults else {}
        claims |= {"exp": now - 600, "iat": now - 900} if "expired" in faults else {}
        if "no_nonce" in faults:
            del claims["nonce"]
        if "alg_none" in faults:
            return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(claims).encode())}."
        if "hs256" in faults:  # signed with the client secret, as an HMAC: never accepted
            return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(CLIENT[1].encode()))
        key = self.other_key if "other_key" in faults else self.key
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return jwt.encode({"alg": "RS256", "kid": "standin-1"}, claims, key)

    async def userinfo(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer standin-access-"):
            return JSONResponse({"error": "invalid_token"}, 401)
        sub = "another-subject" if "userinfo_sub" in self.faults else self.person["sub"]
        return JSONResponse({"sub": sub, "email": self.person["email"],
                             "email_verified": self.person["email_verified"], "preferred_username": "carol"})

    # GitHub ------------------------------------------------------------------------------------

    async def github_authorize(self, request: Request) -> Response:
        return await self.authorize(request)

    async def github_token(self, request: Request) -> Response:
        if "down" in self.faults:
            return Response("upstream trouble", 500)
        form = dict(await request.form())
        if (form.get("client_id"), form.get("client_secret")) != CLIENT:
            return JSONResponse({"error": "incorrect_client_credentials"})  # GitHub: 200 with an error
        if form.get("grant_type") == "refresh_token":  # GitHub Apps: the refresh token is used once
            scope = self.github_refresh_tokens.pop(form.get("refresh_token", ""), None)
            if scope is None:
                return JSONResponse({"error": "bad_refresh_token"})
            return self._github_tokens(scope)
        authorization = self._redeemed(form)
        if authorization is None:
            return JSONResponse({"error": "bad_verification_code"})
        return self._github_tokens(",".join(authorization.get("scope", "").split()))  # GitHub: comma-separated

    def _github_tokens(self, scope: str) -> Response:
        access = "gho_standin" + secrets.token_urlsafe(8)
        self.github_tokens[access] = scope
        answer: dict[str, Any] = {"access_token": access, "token_type": "bearer", "scope": scope}
        if self.expiring is not None:
            refresh = "ghr_standin" + secrets.token_urlsafe(8)
            self.github_refresh_tokens[refresh] = scope
            answer |= {"expires_in": self.expiring, "refresh_token": refresh, "refresh_token_expires_in": 15897600}
        return JSONResponse(answer)

    async def github_delete_token(self, request: Request) -> Response:
        """"Delete an app token": the OAuth app's credentials (basic), the token in the JSON body."""
        expected = "Basic " + base64.b64encode(f"{CLIENT[0]}:{CLIENT[1]}".encode()).decode()
        if request.headers.get("authorization") != expected or request.path_params["client_id"] != CLIENT[0]:
            return JSONResponse({"message": "Not Found"}, 404)
        body = await request.json()
        if self.github_tokens.pop(str(body.get("access_token")), None) is None:
            return JSONResponse({"message": "Not Found"}, 404)
        return Response(status_code=204)

    def _github_token_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header.removeprefix("Bearer ") in self.github_tokens

    async def github_user(self, request: Request) -> Response:
        if not self._github_token_ok(request):
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse({"id": self.person["github_id"], "login": self.person["login"], "name": "Carol"})

    async def github_emails(self, request: Request) -> Response:
        if not self._github_token_ok(request):
            return JSONResponse({"message": "Bad credentials"}, 401)
        email = self.person["email"]
        return JSONResponse([{"email": "carol@users.noreply.github.com", "primary": False, "verified": True},
                             *([{"email": email, "primary": True, "verified": self.person["email_verified"]}]
                               if email else [])])

    async def github_orgs(self, request: Request) -> Response:
        if not self._github_token_ok(request):
            return JSONResponse({"message": "Bad credentials"}, 401)
        return JSONResponse([{"login": org, "id": index} for index, org in enumerate(self.person["orgs"])])

    # Serving -------------------------------------------------------------------------------------

    def start(self) -> LoginStandIn:
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/jwks", self.jwks),
            Route("/authorize", self.authorize), Route("/token", self.token, methods=["POST"]),
            Route("/userinfo", self.userinfo),
            Route("/github/login/oauth/authorize", self.github_authorize),
            Route("/github/login/oauth/access_token", self.github_token, methods=["POST"]),
            Route("/github-api/user", self.github_user), Route("/github-api/user/emails", self.github_emails),
            Route("/github-api/user/orgs", self.github_orgs),
            Route("/github-api/applications/{client_id}/token", self.github_delete_token, methods=["DELETE"]),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.be()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
