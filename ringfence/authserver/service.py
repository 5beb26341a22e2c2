"""The embedded authorization server, assembled: storage, keys, Authlib core, endpoints and pages."""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.routing import Route

from ringfence.audit.records import EventKind
from ringfence.authserver.cimd import ClientMetadataFetcher
from ringfence.authserver.client_assertion import ClientAssertionVerifier, SingleUseIds
from ringfence.authserver.client_keys import ClientKeys, ClientKeySetFetcher
from ringfence.authserver.clients import ClientResolver, RedirectPolicy
from ringfence.authserver.endpoints import ProtocolEndpoints
from ringfence.authserver.events import AuthEvents
from ringfence.authserver.identities import SignInIdentities
from ringfence.authserver.keys import KeyRing
from ringfence.authserver.live_grants import LiveGrants
from ringfence.authserver.login_providers import LoginProvider
from ringfence.authserver.metadata import server_metadata
from ringfence.authserver.oauth import ACCESS_TOKEN_SECONDS, McpAuthorizationServer
from ringfence.authserver.pages import Pages, ScopeUnlocks
from ringfence.authserver.provider_pages import ProviderSignIn
from ringfence.authserver.provider_tokens import ProviderTokens
from ringfence.authserver.scopes import ScopePolicy
from ringfence.authserver.sessions import BrowserSessions
from ringfence.authserver.store import AuthStore
from ringfence.authserver.throttle import PROVIDER_SIGN_IN_RATE, REGISTRATION_RATE, SignInThrottle, Throttle
from ringfence.authserver.users import UserStore
from ringfence.config import ConfigError
from ringfence.events import Events, SecurityEvent
from ringfence.guards.confirmation import ConfirmationStore
from ringfence.logs.notices import show_notice
from ringfence.ops.ratelimit import InProcessRateLimiter, RateLimiter
from ringfence.personal_data import SubjectRecords
from ringfence.resource.tokens import TokenVerifier
from ringfence.store.database import Database

logger = logging.getLogger("ringfence.authserver")
FIRST_USER = "owner"


@dataclass(frozen=True)
class AuthServerOptions:
    """What ``serve`` was told about the embedded authorization server."""

    issuer: str  # its tokens' issuer: the public URL
    https: bool  # the public URL is https: browser session cookies are Secure
    data_dir: Path  # the signing keys are kept in its keys/ folder
    allowed_redirect_uris: tuple[str, ...]
    allow_loopback_redirect_uris: bool
    allow_loopback_client_metadata: bool
    clock_leeway_seconds: int
    login_providers: tuple[LoginProvider, ...] = ()  # where people may sign in besides (or instead of) passwords
    local_passwords: bool = True
    http_timeout_seconds: float = 5.0


class EmbeddedAuthServer:
    """Everything the embedded authorization server needs, built once from its options."""

    def __init__(self, options: AuthServerOptions, database: Database, *, resources: frozenset[str],
                 scope_text: Mapping[str, str], default_scopes: frozenset[str], app_name: str,
                 subjects: SubjectRecords | None = None, events: Events | None = None,
                 limiter: RateLimiter | None = None, scope_unlocks: ScopeUnlocks | None = None,
                 provider_access: Mapping[str, frozenset[str]] | None = None) -> None:
        """``provider_access``: the scopes the app's tools act with at each login provider (``provider_scopes=``);
        the people who sign in there have their tokens kept for them."""
        # Sign-in and registration throttles: shared through Redis when the tool-call limits are.
        limiter = limiter or InProcessRateLimiter()
        self.database = database
        self.grants = LiveGrants(database)  # what every revocation here tells the token checks at once
        self.issuer = options.issuer
        self.keys = KeyRing(options.data_dir / "keys", token_lifetime=ACCESS_TOKEN_SECONDS)
        self.users = UserStore(database)
        # The system trust store (and SSL_CERT_FILE / SSL_CERT_DIR, as OpenSSL reads them) verifies
        # the https servers that host client metadata documents and client key sets.
        trust = ssl.create_default_context()  # read once: documents and jwks_uri key sets alike
        self.fetcher = ClientMetadataFetcher(allow_loopback=options.allow_loopback_client_metadata,
                                             ssl_context=trust)
        # private_key_jwt clients' jwks_uri, fetched as documents are; used assertion ids in the limiter.
        self.key_fetcher = ClientKeySetFetcher(allow_loopback=options.allow_loopback_client_metadata,
                                               ssl_context=trust)
        assertions = ClientAssertionVerifier(issuer=self.issuer, keys=ClientKeys(self.key_fetcher),
                                             used=SingleUseIds(limiter), leeway=options.clock_leeway_seconds)
        store = AuthStore(database, revoked=self.grants.forget)
        scopes = ScopePolicy(frozenset(scope_text), default_scopes)
        self.server = McpAuthorizationServer(
            issuer=self.issuer,
            store=store,
            clients=ClientResolver(store, self.fetcher, scopes,
                                   allow_loopback_metadata=options.allow_loopback_client_metadata),
            keys=self.keys,
            resources=resources,
            scopes=scopes,
            redirects=RedirectPolicy(options.allowed_redirect_uris,
                                     allow_loopback=options.allow_loopback_redirect_uris),
            grants=self.grants,
            assertions=assertions,
            leeway=options.clock_leeway_seconds,
        )
        self.endpoints = ProtocolEndpoints(self.server, server_metadata(self.issuer, sorted(scope_text)),
                                           registrations=Throttle(limiter, REGISTRATION_RATE, "register"),
                                           events=AuthEvents(events))
        self.pages = Pages(self.server, users=self.users, sessions=BrowserSessions(database, secure=options.https),
                           logins=SignInThrottle(limiter), scope_text=scope_text, app_name=app_name,
                           confirmations=ConfirmationStore(lambda: database),
                           subjects=subjects,
                           account_deleted=self.grants.forget_subject,
                           events=AuthEvents(events), scope_unlocks=scope_unlocks,
                           local_passwords=options.local_passwords)
        self.local_passwords = options.local_passwords
        # Login providers are the operator's own choice, not a client's: fetched without the SSRF guard of
        # client metadata documents (a company provider may well be on a private address).
        self.provider_http = httpx.AsyncClient(verify=trust, timeout=options.http_timeout_seconds,
                                               follow_redirects=False)
        self.provider_sign_in = None
        self.events = events
        self.identities = SignInIdentities(database)
        self.login_providers = options.login_providers
        access = dict(provider_access or {})
        named = {provider.name for provider in options.login_providers}
        if unknown := sorted(set(access) - named):
            raise ConfigError(f"the app's tools act at login provider {', '.join(unknown)} (provider_scopes=), but "
                              "no --login-provider is named so: add one with that name=")
        if options.login_providers:
            self.provider_sign_in = ProviderSignIn(
                self.pages, self.identities, options.login_providers, self.provider_http,
                throttle=Throttle(limiter, PROVIDER_SIGN_IN_RATE, "login-provider"),
                leeway=options.clock_leeway_seconds, data_dir=options.data_dir, access_scopes=access)
            self.pages.provider_sign_in = self.provider_sign_in

    @property
    def provider_tokens(self) -> ProviderTokens | None:
        """People's tokens at their login provider, for the tools that act there (none unless one does)."""
        sign_in = self.provider_sign_in
        return sign_in.tokens if sign_in is not None and sign_in.tokens.flows else None

    def routes(self) -> list[Route]:
        providers = self.provider_sign_in.routes() if self.provider_sign_in else []
        return [*self.endpoints.routes(), *providers, *self.pages.routes()]

    def verifier(self, resource: str) -> TokenVerifier:
        """Verifies this server's tokens for ``resource`` straight from the key ring (no HTTP),
        remembered until they expire, and refuses them within a second of their grant's revocation
        or their account's deletion (on every instance; at once on this one)."""
        return self.server.own_token_verifiers[resource]

    async def start(self) -> None:
        self.keys.load()
        if self.provider_sign_in is not None and (gone := await self.provider_sign_in.tokens.forget_undeclared()):
            logger.warning("deleted the login-provider tokens of %d accounts: no tool acts at their provider any more",
                           gone)
        await self.end_access_not_admitted()
        if self.local_passwords and await self.users.count() == 0:
            password = secrets.token_urlsafe(12)
            await self.users.add(FIRST_USER, password)
            # Shown once, so that the quick start can sign in; it is stored only as an argon2id hash.
            # Written straight to standard error: the log would redact it, and must never hold it.
            show_notice(f"ringfence: NOTICE (not logged): created the first user: sign in as {FIRST_USER!r} with "
                        f"password {password!r} (shown once; change it with `ringfence users passwd {FIRST_USER}`)")
            logger.warning("created the first user %r; its password was shown once on standard error", FIRST_USER)

    async def end_access_not_admitted(self) -> None:
        """Accounts of login providers that the rules no longer admit (a narrowed ``allowed-domain=``, a provider
        removed) lose their apps' grants, sign-in sessions and provider tokens at start-up; they can sign in
        again only if the rules admit them again."""
        for user, reason in await self.identities.not_admitted(self.login_providers):
            ended = await self.server.store.end_access(user.id)
            if self.provider_sign_in is not None:
                ended += await self.provider_sign_in.tokens.forget(user.id, revoke=True)
            if not ended:
                continue  # ended at an earlier start already
            logger.warning("ended the access of account %r: %s", user.username, reason)
            if self.events is not None:
                await self.events.record_quietly(SecurityEvent(EventKind.CONSENT_REVOKED, "not_admitted",
                                                               principal=user.subject, details={"reason": reason}))

    async def close(self) -> None:
        await self.fetcher.aclose()
        await self.key_fetcher.aclose()
        await self.provider_http.aclose()
