"""Signing a person in at a login provider, and reading back who they are there.

OpenID Connect: the authorization code flow with PKCE (S256), ``state`` and ``nonce``; the provider's
configuration read from its discovery document; the ID token checked with joserfc against the
provider's published keys (OpenID Connect Core §3.1.3.7). GitHub: its OAuth 2.0 flow with PKCE, then
its user, e-mail and organisation APIs. Either way the result is an :class:`UpstreamIdentity`:
the provider's issuer and subject, and the e-mail address only when the provider verified it.

Authlib's OpenID client is not used: it lives in its framework integrations, validates ID tokens
with its deprecated ``authlib.jose`` rather than joserfc, and leaves the algorithm list open. What
is needed here is three HTTP requests and one joserfc check.

Everything fails closed: a provider that cannot be reached or answers unreadably raises
:class:`ProviderUnavailable` (nobody signs in); an answer that does not check out raises
:class:`SignInRefused`. Neither carries the provider's tokens or its answer's body.
"""

from __future__ import annotations

import asyncio
import base64
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError

from ringfence.authserver.login_providers import LoginProvider
from ringfence.authserver.oauth import s256_challenge
from ringfence.config import ASYMMETRIC_ALGORITHMS
from ringfence.refusals import VerifierUnavailable
from ringfence.resource.tokens import JwksCache

MAX_ANSWER_BYTES = 256 * 1024
DISCOVERY_SECONDS = 3600  # the discovery document is read again after this long
KEYS_REFRESH_SECONDS = 30  # an unknown key id fetches the key set again at most this often
IDENTITY_SCOPES = ("openid", "email", "profile")
GITHUB_SCOPES = ("read:user", "user:email")


class ProviderUnavailable(Exception):
    """The provider could not be reached, or answered something unreadable: nobody signs in."""


class SignInRefused(Exception):
    """The provider's answer does not check out; the message is for the log, never the page."""


@dataclass(frozen=True)
class UpstreamIdentity:
    issuer: str
    subject: str
    email: str | None  # only an address the provider verified
    display: str  # what the pages show: the e-mail, the login, or the subject
    orgs: frozenset[str] = frozenset()
    auth_time: int | None = None  # when the person last entered their credentials, if the provider said


@dataclass(frozen=True)
class Attempt:
    """What one sign-in sends and must get back: kept by the server between the two legs."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int
    reauthenticate: bool = False  # the person must enter their credentials again (an account deletion)

    @property
    def code_challenge(self) -> str:
        return s256_challenge(self.code_verifier)


class ProviderFlow(Protocol):
    provider: LoginProvider

    async def authorization_endpoint(self) -> str: ...

    async def authorization_url(self, attempt: Attempt) -> str: ...

    async def identity(self, answer: Mapping[str, str], attempt: Attempt) -> UpstreamIdentity: ...


def flow_for(provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str, leeway: int) -> ProviderFlow:
    if provider.kind == "github":
        return GitHubFlow(provider, http, redirect_uri)
    return OpenIdFlow(provider, http, redirect_uri, leeway)


async def _get_json(http: httpx.AsyncClient, url: str, **options: Any) -> Any:
    return _json_of(await _send(http, "GET", url, **options))


async def _send(http: httpx.AsyncClient, method: str, url: str, **options: Any) -> httpx.Response:
    try:
        return await http.request(method, url, **options)
    except httpx.HTTPError:
        raise ProviderUnavailable(f"{method} {_origin(url)} failed") from None


def _json_of(response: httpx.Response) -> Any:
    if response.status_code >= 500 or len(response.content) > MAX_ANSWER_BYTES:
        raise ProviderUnavailable(f"{_origin(str(response.request.url))} answered {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise ProviderUnavailable(f"{_origin(str(response.request.url))} answered no JSON") from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: both form-urlencoded before they are joined and base64-encoded.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _checked_answer(answer: Mapping[str, str], attempt: Attempt) -> str:
    """The authorization code of the provider's redirect back, once its ``state`` is the attempt's."""
    if answer.get("state") != attempt.state:  # the caller looked the attempt up by it; checked here again
        raise SignInRefused("the state does not match")
    if "error" in answer:
        raise SignInRefused(f"the provider answered error={answer['error'][:64]!r}")
    code = answer.get("code")
    if not code or len(code) > 2048:
        raise SignInRefused("the provider sent no authorization code")
    return code


class OpenIdFlow:
    """Any OpenID Connect provider, by its issuer."""

    def __init__(self, provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str, leeway: int) -> None:
        self.provider = provider
        self.http = http
        self.redirect_uri = redirect_uri
        self.leeway = leeway
        self._document: dict[str, Any] | None = None
        self._read_at = 0.0
        self._keys: JwksCache | None = None
        self._lock = asyncio.Lock()

    async def configuration(self) -> dict[str, Any]:
        """The provider's discovery document, checked and kept for an hour."""
        if self._document is not None and time.monotonic() - self._read_at < DISCOVERY_SECONDS:
            return self._document
        async with self._lock:
            if self._document is None or time.monotonic() - self._read_at >= DISCOVERY_SECONDS:
                self._document = await self._discover()
                self._read_at = time.monotonic()
                self._keys = JwksCache(self._document["jwks_uri"], self.http, max_age=DISCOVERY_SECONDS,
                                       refresh_interval=KEYS_REFRESH_SECONDS)
        return self._document

    async def _discover(self) -> dict[str, Any]:
        issuer = self.provider.issuer
        document = await _get_json(self.http, issuer + "/.well-known/openid-configuration",
                                   headers={"accept": "application/json"})
        if not isinstance(document, dict):
            raise ProviderUnavailable("the discovery document is not an object")
        # OpenID Connect Discovery §4.3: the issuer it names MUST be the one it was fetched for (mix-up).
        if document.get("issuer") != issuer:
            raise ProviderUnavailable("the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
                raise ProviderUnavailable(f"the discovery document has no usable {name}")
            if urlsplit(value).scheme == "http" and urlsplit(issuer).scheme == "https":
                raise ProviderUnavailable(f"the discovery document's {name} is not https")
        return document

    def algorithms(self, document: Mapping[str, Any]) -> list[str]:
        """Asymmetric algorithms only (never ``none`` nor an HMAC keyed by the client secret)."""
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        return sorted(ASYMMETRIC_ALGORITHMS & {alg for alg in offered if isinstance(alg, str)})

    async def authorization_endpoint(self) -> str:
        return str((await self.configuration())["authorization_endpoint"])

    async def authorization_url(self, attempt: Attempt) -> str:
        query = {
            "response_type": "code", "client_id": self.provider.client_id, "redirect_uri": self.redirect_uri,
            "scope": " ".join(dict.fromkeys((*IDENTITY_SCOPES, *self.provider.scopes))),
            "state": attempt.state, "nonce": attempt.nonce,
            "code_challenge": attempt.code_challenge, "code_challenge_method": "S256",
        }
        if attempt.reauthenticate:  # OpenID Connect Core §3.1.2.1: credentials entered again, auth_time returned
            query |= {"prompt": "login", "max_age": "0"}
        endpoint = await self.authorization_endpoint()
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)

    async def identity(self, answer: Mapping[str, str], attempt: Attempt) -> UpstreamIdentity:
        document = await self.configuration()
        # RFC 9207 §2.4: when the provider sends iss, it must be the provider this attempt went to.
        if "iss" in answer or document.get("authorization_response_iss_parameter_supported") is True:
            if answer.get("iss") != self.provider.issuer:
                raise SignInRefused("the authorization response names another issuer")
        code = _checked_answer(answer, attempt)
        tokens = await self._redeem(document, code, attempt)
        claims = await self._id_token_claims(document, tokens.get("id_token"), attempt)
        profile = claims
        if "email" not in claims and isinstance(document.get("userinfo_endpoint"), str):
            info = await self._userinfo(document["userinfo_endpoint"], tokens.get("access_token"))
            if info.get("sub") != claims["sub"]:  # OpenID Connect Core §5.3.2: MUST match the ID token's
                raise SignInRefused("the userinfo answer is about another subject")
            profile = info
        email, verified = profile.get("email"), profile.get("email_verified")
        verified_email = email if isinstance(email, str) and verified in (True, "true") else None
        name = profile.get("preferred_username")
        display = verified_email or (name if isinstance(name, str) and name else str(claims["sub"]))
        auth_time = claims.get("auth_time")
        return UpstreamIdentity(self.provider.issuer, str(claims["sub"]), verified_email, display[:200],
                                auth_time=auth_time if isinstance(auth_time, int) else None)

    async def _redeem(self, document: Mapping[str, Any], code: str, attempt: Attempt) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": attempt.code_verifier}
        headers = {"accept": "application/json"}
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            headers["authorization"] = _basic(self.provider.client_id, self.provider.client_secret)
        else:
            form |= {"client_id": self.provider.client_id, "client_secret": self.provider.client_secret}
        response = await _send(self.http, "POST", document["token_endpoint"], data=form, headers=headers)
        tokens = _json_of(response)
        if response.status_code != 200 or not isinstance(tokens, dict):
            raise SignInRefused(f"the token endpoint refused the code ({response.status_code})")
        return tokens

    async def _id_token_claims(self, document: Mapping[str, Any], id_token: object,
                               attempt: Attempt) -> dict[str, Any]:
        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise SignInRefused("the token response has no ID token")
        algorithms = self.algorithms(document)
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise SignInRefused("the ID token is malformed") from None
        if header.get("alg") not in algorithms:
            raise SignInRefused(f"the ID token's algorithm {str(header.get('alg'))[:16]!r} is not accepted")
        kid = header.get("kid")
        assert self._keys is not None  # set with the document
        try:
            keys = await self._keys.keys(kid if isinstance(kid, str) else None)
        except VerifierUnavailable:
            raise ProviderUnavailable("the provider's signing keys could not be fetched") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is superseded by RFC 9864
                claims = jwt.decode(id_token, keys, algorithms=algorithms).claims
        except (JoseError, ValueError, UnicodeError):
            raise SignInRefused("the ID token's signature does not verify") from None
        # OpenID Connect Core §3.1.3.7: iss exactly, aud contains the client, exp, iat, and the nonce sent.
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.provider.issuer},
            aud={"essential": True, "value": self.provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": attempt.nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignInRefused(f"the ID token's {getattr(exc, 'claim', None) or 'claims'} claim is wrong") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # §3.1.3.7 (4, 5): with several audiences azp should be there, and when there it must be this client.
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.provider.client_id:
            raise SignInRefused("the ID token's azp claim is wrong")
        if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
            raise SignInRefused("the ID token's sub claim is wrong")
        if attempt.reauthenticate:  # §3.1.2.1 max_age: auth_time is required, and must be this attempt's
            auth_time = claims.get("auth_time")
            if not isinstance(auth_time, int) or auth_time < attempt.started_at - self.leeway:
                raise SignInRefused("the provider did not have the person sign in again")
        return claims

    async def _userinfo(self, endpoint: str, access_token: object) -> dict[str, Any]:
        if not isinstance(access_token, str):
            raise SignInRefused("the token response has no access token for userinfo")
        response = await _send(self.http, "GET", endpoint, headers={"authorization": f"Bearer {access_token}",
                                                                    "accept": "application/json"})
        info = _json_of(response)
        if response.status_code != 200 or not isinstance(info, dict):
            raise SignInRefused(f"the userinfo endpoint refused the token ({response.status_code})")
        return info


class GitHubFlow:
    """GitHub's OAuth apps: no OpenID, so who the person is comes from its REST API."""

    def __init__(self, provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str) -> None:
        self.provider = provider
        self.http = http
        self.redirect_uri = redirect_uri

    def scopes(self) -> tuple[str, ...]:
        org_scope = ("read:org",) if self.provider.admission.orgs else ()
        return tuple(dict.fromkeys((*GITHUB_SCOPES, *org_scope, *self.provider.scopes)))

    async def authorization_endpoint(self) -> str:
        return f"{self.provider.github_url}/login/oauth/authorize"

    async def authorization_url(self, attempt: Attempt) -> str:
        query = {"client_id": self.provider.client_id, "redirect_uri": self.redirect_uri,
                 "scope": " ".join(self.scopes()), "state": attempt.state, "allow_signup": "false",
                 "code_challenge": attempt.code_challenge, "code_challenge_method": "S256"}
        if attempt.reauthenticate:
            query["prompt"] = "select_account"  # GitHub's closest: the person picks the account again
        return f"{await self.authorization_endpoint()}?{urlencode(query)}"

    async def identity(self, answer: Mapping[str, str], attempt: Attempt) -> UpstreamIdentity:
        code = _checked_answer(answer, attempt)
        response = await _send(self.http, "POST", f"{self.provider.github_url}/login/oauth/access_token",
                               headers={"accept": "application/json"},
                               data={"client_id": self.provider.client_id, "code": code,
                                     "client_secret": self.provider.client_secret,
                                     "redirect_uri": self.redirect_uri, "code_verifier": attempt.code_verifier})
        tokens = _json_of(response)
        # GitHub answers 200 with {"error": ...} for a bad code.
        token = tokens.get("access_token") if isinstance(tokens, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            raise SignInRefused("GitHub refused the code")
        api = {"authorization": f"Bearer {token}", "accept": "application/vnd.github+json",
               "x-github-api-version": "2022-11-28"}
        user = await self._api(f"{self.provider.github_api_url}/user", api)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or not isinstance(user.get("login"), str):
            raise SignInRefused("GitHub's user answer has no id")
        emails = await self._api(f"{self.provider.github_api_url}/user/emails", api)
        entries = emails if isinstance(emails, list) else []
        primary = [entry.get("email") for entry in entries if isinstance(entry, dict)
                   and entry.get("primary") is True and entry.get("verified") is True]
        orgs: frozenset[str] = frozenset()
        if self.provider.admission.orgs:
            listed = await self._api(f"{self.provider.github_api_url}/user/orgs", api)
            orgs = frozenset(org["login"] for org in listed if isinstance(org, dict)
                             and isinstance(org.get("login"), str)) if isinstance(listed, list) else frozenset()
        email = primary[0] if primary and isinstance(primary[0], str) else None
        # The numeric id, never the login: a login can be renamed and then taken by someone else.
        return UpstreamIdentity(self.provider.issuer, str(user["id"]), email, user["login"][:200], orgs)

    async def _api(self, url: str, headers: Mapping[str, str]) -> Any:
        response = await _send(self.http, "GET", url, headers=dict(headers))
        body = _json_of(response)
        if response.status_code != 200:
            raise SignInRefused(f"GitHub's API refused the token ({response.status_code})")
        return body
