"""Signing a person in at a login provider, and reading back who they are there.

OpenID Connect: the authorization code flow with PKCE (S256), ``state`` and ``nonce``; the provider's
configuration read from its discovery document; the ID token checked with joserfc against the
provider's published keys (OpenID Connect Core §3.1.3.7). GitHub: its OAuth 2.0 flow with PKCE, then
its user, e-mail and organisation APIs. Either way the result is an :class:`UpstreamIdentity`:
the provider's issuer and subject, and the e-mail address only when the provider verified it.

When the app's tools act at the provider (``provider_scopes=``), a sign-in on the way to them
(:func:`asks_for_access`) also asks for their scopes (and for a refresh token, ``offline_access``,
where an OpenID provider offers it) and hands back the provider's tokens as a :class:`ProviderGrant`;
the flows refresh and revoke them later (authserver/provider_tokens.py keeps them). Any other
sign-in asks for who the person is and nothing more.

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
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


MAX_TOKEN_CHARS = 8192


class ProviderUnavailable(Exception):
    """The provider could not be reached, or answered something unreadable: nobody signs in."""


class SignInRefused(Exception):
    """The provider's answer does not check out; the message is for the log, never the page."""


@dataclass(frozen=True)
class ProviderGrant:
    """The provider's tokens for the person, kept for the app's tools that act there."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: int | None  # of the access token, seconds since the epoch; None: the provider did not say
    scopes: frozenset[str]


def provider_grant(tokens: Mapping[str, Any], requested: Iterable[str]) -> ProviderGrant:
    """The tokens of a token endpoint's answer (RFC 6749 §5.1); ``requested``: the scopes asked for."""
    access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
    if not isinstance(access, str) or not 0 < len(access) <= MAX_TOKEN_CHARS:
        raise SignInRefused("the token response has no usable access token")
    token_type = tokens.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":  # RFC 6750: sent as a bearer token
        raise SignInRefused("the provider's access token is not a bearer token")
    expires_in = tokens.get("expires_in")
    lifetime = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else None
    scope = tokens.get("scope")
    # RFC 6749 §5.1: the scope may be left out when it is the one requested. GitHub separates with commas.
    scopes = (frozenset(re.split(r"[ ,]+", scope.strip())) - {""} if isinstance(scope, str)
              else frozenset(requested))
    return ProviderGrant(access, refresh if isinstance(refresh, str) and 0 < len(refresh) <= MAX_TOKEN_CHARS
                         else None, int(time.time()) + lifetime if lifetime and lifetime > 0 else None, scopes)


@dataclass(frozen=True)
class UpstreamIdentity:
    issuer: str
    subject: str
    email: str | None  # only an address the provider verified
    display: str  # what the pages show: the e-mail, the login, or the subject
    orgs: frozenset[str] = frozenset()
    auth_time: int | None = None  # when the person last entered their credentials, if the provider said
    grant: ProviderGrant | None = None  # the provider's tokens, when the app's tools act there


# Where a tool sends a person whose access at the provider must be granted again (provider_tokens.py).
RENEW_ACCESS_NEXT = "/account#provider-access"


def asks_for_access(next_url: str) -> bool:
    """Whether a sign-in that goes on to ``next_url`` asks for the tools' access at the provider: only on
    the way to an app (an authorization request) or back to it (a tool's link to grant it again). A
    person signing in to their account page is asked who they are, nothing more (least privilege)."""
    return next_url.startswith("/authorize?") or next_url == RENEW_ACCESS_NEXT


@dataclass(frozen=True)
class Attempt:
    """What one sign-in sends and must get back: kept by the server between the two legs."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int
    reauthenticate: bool = False  # the person must enter their credentials again (an account deletion)
    access: bool = False  # also ask for what the app's tools use there (asks_for_access); never to re-authenticate

    @property
    def code_challenge(self) -> str:
        return s256_challenge(self.code_verifier)


class ProviderFlow(Protocol):
    provider: LoginProvider
    access_scopes: frozenset[str]  # what the app's tools act with there (provider_scopes=); none: no tokens kept

    async def authorization_endpoint(self) -> str: ...

    async def authorization_url(self, attempt: Attempt) -> str: ...

    async def identity(self, answer: Mapping[str, str], attempt: Attempt) -> UpstreamIdentity: ...

    async def refresh(self, grant: ProviderGrant) -> ProviderGrant:
        """A new access token for ``grant``; :class:`SignInRefused` when the provider will not renew it."""
        ...

    async def revoke(self, grant: ProviderGrant) -> None:
        """Ask the provider to end ``grant``'s tokens, where it can be asked (best effort)."""
        ...


def flow_for(provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str, leeway: int,
             access_scopes: frozenset[str] = frozenset()) -> ProviderFlow:
    if provider.kind == "github":
        return GitHubFlow(provider, http, redirect_uri, access_scopes)
    return OpenIdFlow(provider, http, redirect_uri, leeway, access_scopes)


def renewed(answer: Mapping[str, Any], grant: ProviderGrant) -> ProviderGrant:
    """A refresh's answer: a refresh token and scope left out are the grant's (RFC 6749 §6)."""
    fresh = provider_grant(answer, grant.scopes)
    return ProviderGrant(fresh.access_token, fresh.refresh_token or grant.refresh_token, fresh.expires_at,
                         fresh.scopes)


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

    def __init__(self, provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str, leeway: int,
                 access_scopes: frozenset[str] = frozenset()) -> None:
        self.provider = provider
        self.http = http
        self.redirect_uri = redirect_uri
        self.leeway = leeway
        self.access_scopes = access_scopes
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

    def offline(self, document: Mapping[str, Any]) -> bool:
        """Whether to ask for a refresh token: the app's tools act here and the provider offers
        ``offline_access`` (OpenID Connect Core §11); elsewhere the person signs in again once it expires."""
        offered = document.get("scopes_supported")
        return bool(self.access_scopes) and isinstance(offered, list) and "offline_access" in offered

    async def authorization_url(self, attempt: Attempt) -> str:
        document = await self.configuration()
        scopes = [*IDENTITY_SCOPES, *self.provider.scopes]
        query = {
            "response_type": "code", "client_id": self.provider.client_id, "redirect_uri": self.redirect_uri,
            "state": attempt.state, "nonce": attempt.nonce,
            "code_challenge": attempt.code_challenge, "code_challenge_method": "S256",
        }
        if attempt.reauthenticate:  # OpenID Connect Core §3.1.2.1: credentials entered again, auth_time returned
            query |= {"prompt": "login", "max_age": "0"}
        elif attempt.access:
            scopes += sorted(self.access_scopes)
            if self.offline(document):  # §11: offline_access needs prompt=consent
                scopes.append("offline_access")
                query["prompt"] = "consent"
        query["scope"] = " ".join(dict.fromkeys(scopes))
        endpoint = str(document["authorization_endpoint"])
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
        grant = None
        if self.access_scopes and attempt.access:
            grant = provider_grant(tokens, self.access_scopes)
        return UpstreamIdentity(self.provider.issuer, str(claims["sub"]), verified_email, display[:200],
                                auth_time=auth_time if isinstance(auth_time, int) else None, grant=grant)

    async def _redeem(self, document: Mapping[str, Any], code: str, attempt: Attempt) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": attempt.code_verifier}
        response = await self._authenticated_post(document["token_endpoint"], document, form)
        tokens = _json_of(response)
        if response.status_code != 200 or not isinstance(tokens, dict):
            raise SignInRefused(f"the token endpoint refused the code ({response.status_code})")
        return tokens

    async def _authenticated_post(self, url: str, document: Mapping[str, Any], form: dict[str, str]) -> httpx.Response:
        """``form`` posted to one of the provider's endpoints with this client's credentials."""
        headers = {"accept": "application/json"}
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            headers["authorization"] = _basic(self.provider.client_id, self.provider.client_secret)
        else:
            form = form | {"client_id": self.provider.client_id, "client_secret": self.provider.client_secret}
        return await _send(self.http, "POST", url, data=form, headers=headers)

    async def refresh(self, grant: ProviderGrant) -> ProviderGrant:
        if grant.refresh_token is None:
            raise SignInRefused("the provider gave no refresh token")
        document = await self.configuration()
        response = await self._authenticated_post(document["token_endpoint"], document, {
            "grant_type": "refresh_token", "refresh_token": grant.refresh_token})  # RFC 6749 §6
        tokens = _json_of(response)
        if response.status_code != 200 or not isinstance(tokens, dict):
            raise SignInRefused(f"the token endpoint refused the refresh token ({response.status_code})")
        return renewed(tokens, grant)

    async def revoke(self, grant: ProviderGrant) -> None:
        document = await self.configuration()
        endpoint = document.get("revocation_endpoint")
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("https", "http"):
            return  # the provider offers no revocation: the tokens end when they expire
        # RFC 7009 §2.1: revoking the refresh token should end the grant's access tokens too; both are sent.
        for token, hint in ((grant.refresh_token, "refresh_token"), (grant.access_token, "access_token")):
            if token is not None:
                await self._authenticated_post(endpoint, document, {"token": token, "token_type_hint": hint})

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

    def __init__(self, provider: LoginProvider, http: httpx.AsyncClient, redirect_uri: str,
                 access_scopes: frozenset[str] = frozenset()) -> None:
        self.provider = provider
        self.http = http
        self.redirect_uri = redirect_uri
        self.access_scopes = access_scopes

    def scopes(self, attempt: Attempt) -> tuple[str, ...]:
        org_scope = ("read:org",) if self.provider.admission.orgs else ()
        access = sorted(self.access_scopes) if attempt.access else []
        return tuple(dict.fromkeys((*GITHUB_SCOPES, *org_scope, *self.provider.scopes, *access)))

    async def authorization_endpoint(self) -> str:
        return f"{self.provider.github_url}/login/oauth/authorize"

    async def authorization_url(self, attempt: Attempt) -> str:
        query = {"client_id": self.provider.client_id, "redirect_uri": self.redirect_uri,
                 "scope": " ".join(self.scopes(attempt)), "state": attempt.state, "allow_signup": "false",
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
        grant = provider_grant(tokens, self.scopes(attempt)) if self.access_scopes and attempt.access else None
        # The numeric id, never the login: a login can be renamed and then taken by someone else.
        return UpstreamIdentity(self.provider.issuer, str(user["id"]), email, user["login"][:200], orgs,
                                grant=grant)

    async def refresh(self, grant: ProviderGrant) -> ProviderGrant:
        """GitHub Apps' expiring user tokens; an OAuth app's tokens do not expire and have no refresh token."""
        if grant.refresh_token is None:
            raise SignInRefused("GitHub gave no refresh token")
        response = await _send(self.http, "POST", f"{self.provider.github_url}/login/oauth/access_token",
                               headers={"accept": "application/json"},
                               data={"client_id": self.provider.client_id, "client_secret": self.provider.client_secret,
                                     "grant_type": "refresh_token", "refresh_token": grant.refresh_token})
        tokens = _json_of(response)
        if response.status_code != 200 or not isinstance(tokens, dict) or "access_token" not in tokens:
            raise SignInRefused("GitHub refused the refresh token")  # it answers 200 with {"error": ...}
        return renewed(tokens, grant)

    async def revoke(self, grant: ProviderGrant) -> None:
        # GitHub's "Delete an app token": the OAuth app's credentials, the token in the body.
        await _send(self.http, "DELETE", f"{self.provider.github_api_url}/applications/{self.provider.client_id}/token",
                    headers={"authorization": _basic(self.provider.client_id, self.provider.client_secret),
                             "accept": "application/vnd.github+json"},
                    json={"access_token": grant.access_token})

    async def _api(self, url: str, headers: Mapping[str, str]) -> Any:
        response = await _send(self.http, "GET", url, headers=dict(headers))
        body = _json_of(response)
        if response.status_code != 200:
            raise SignInRefused(f"GitHub's API refused the token ({response.status_code})")
        return body
