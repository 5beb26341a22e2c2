"""The two legs of a sign-in at a login provider: ``/login/{name}`` sends the browser there, and
``/login/{name}/callback`` reads who came back (:mod:`.upstream`), checks they may sign in
(:class:`.login_providers.Admission`), provisions their account at the first sign-in
(:mod:`.identities`) and signs the browser session in.

The same legs re-authenticate a provider's account before it is deleted: the provider must have
the person enter their credentials again, and it must be the same identity.

Where the app's tools act at the provider (``provider_scopes=``), a sign-in on the way to an app (or
back to it, from a tool's link) asks for what they use there and keeps the provider's tokens for them
(:mod:`.provider_tokens`) while an app is connected; ``/account/provider-access`` removes them, and so
does declining the app's consent when no other app is connected.

Pages say only what the person can act on; why a provider's answer was refused goes to the log
and the audit log (``auth.failure``), never to the page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ringfence.audit.records import EventKind
from ringfence.authserver.identities import SignInIdentities
from ringfence.authserver.login_providers import LoginProvider
from ringfence.authserver.pages import Pages, origin_of, safe_next, security_headers
from ringfence.authserver.provider_tokens import HeldAccess, ProviderTokens
from ringfence.authserver.sessions import Session
from ringfence.authserver.throttle import Throttle, address_key
from ringfence.authserver.upstream import ProviderFlow, ProviderUnavailable, SignInRefused, flow_for
from ringfence.ops.ratelimit import RateLimitUnavailable

logger = logging.getLogger("ringfence.authserver")


class ProviderSignIn:
    def __init__(self, pages: Pages, identities: SignInIdentities, providers: tuple[LoginProvider, ...],
                 http: httpx.AsyncClient, *, throttle: Throttle, leeway: int, data_dir: Path,
                 access_scopes: Mapping[str, frozenset[str]]) -> None:
        """``access_scopes``: the scopes the app's tools act with at each provider (``provider_scopes=``)."""
        self.pages = pages
        self.identities = identities
        self.throttle = throttle  # each start stores a pending attempt: bounded per address
        issuer = pages.server.issuer
        self.flows: Mapping[str, ProviderFlow] = {
            provider.name: flow_for(provider, http, issuer + provider.callback_path(), leeway,
                                    access_scopes.get(provider.name, frozenset()))
            for provider in providers}
        self.tokens = ProviderTokens(identities.database, data_dir, self.flows, issuer=issuer,
                                     sign_in_url=issuer + "/login")

    def choices(self, next_url: str) -> list[tuple[str, str]]:
        """The sign-in page's "Continue with …" links: (label, address)."""
        query = urlencode({"next": next_url})
        return [(flow.provider.label, f"/login/{name}?{query}") for name, flow in self.flows.items()]

    async def provider_of(self, user_id: int) -> str | None:
        """The provider an account signs in at; ``None``: a local account, with a password."""
        identity = await self.identities.of(user_id)
        return identity.provider if identity is not None else None

    def label_of(self, provider: str) -> str:
        flow = self.flows.get(provider)
        return flow.provider.label if flow is not None else provider

    def routes(self) -> list[Route]:
        return [Route("/login/{name}", self.start, methods=["GET"]),
                Route("/login/{name}/callback", self.callback, methods=["GET"]),
                Route("/account/provider-access", self.remove_access, methods=["POST"])]

    async def held_access(self, user_id: int) -> tuple[str, HeldAccess] | None:
        """What the account page shows of the tokens kept for the account: the provider's label, and them."""
        held = await self.tokens.held(user_id)
        return (self.label_of(held.provider), held) if held is not None else None

    async def remove_access(self, request: Request) -> Response:
        """The person ends what the app may do as them at their provider: deleted here, revoked there."""
        session = await self.pages.sessions.current(request)
        user = await self.pages.signed_in_user(session)
        if user is None or await self.pages.posted_form(request, session) is None:
            return self.pages.expired_form()
        held = await self.tokens.held(user.id)
        if held is not None and await self.tokens.forget(user.id, revoke=True):
            await self.pages.record(request, EventKind.CONSENT_REVOKED, "revoked", subject=user.subject,
                                    provider=held.provider, access="provider_tokens")
        return RedirectResponse("/account", status_code=303, headers=security_headers())

    async def disconnected(self, user_id: int) -> None:
        """An app was disconnected: with none left, nothing may act as the person at their provider."""
        await self.tokens.forget(user_id, revoke=True, unless_connected=True)

    def unavailable(self, flow: ProviderFlow, reason: str) -> Response:
        logger.warning("login provider %s unavailable: %s", flow.provider.name, reason)
        page = self.pages.error_page(f"Signing in with {flow.provider.label} is not possible right now. "
                                     "Try again in a few minutes.", status=503, code="temporarily_unavailable",
                                     heading="Sign-in is unavailable")
        page.headers["retry-after"] = "60"
        return page

    def unknown(self) -> Response:
        return self.pages.error_page("There is no such way to sign in here.", status=404, heading="Not found")

    async def start(self, request: Request) -> Response:
        """A link, not a form: starting a sign-in only ever signs a browser in as whoever completes it."""
        flow = self.flows.get(request.path_params["name"])
        if flow is None:
            return self.unknown()
        try:
            decision = await self.throttle.attempt(address_key(request))
        except RateLimitUnavailable:  # fail closed: no attempt is stored unthrottled
            return self.pages.error_page("Sign-in is unavailable right now. Try again later.", status=503,
                                         code="temporarily_unavailable", heading="Sign-in is unavailable")
        if not decision.allowed:
            page = self.pages.error_page("Too many sign-ins were started from here. Try again later.", status=429,
                                         code="slow_down", heading="Slow down")
            page.headers["retry-after"] = decision.retry_after_header
            return page
        session = await self.pages.sessions.ensure(request)
        response = await self.send_to(flow, session, safe_next(request.query_params.get("next")))
        self.pages.sessions.attach(response, session)
        return response

    async def reauthenticate(self, request: Request, provider: str, user_id: int) -> Response:
        """Send the signed-in person of a provider's account back there to sign in again (an account deletion)."""
        flow = self.flows.get(provider)
        session = await self.pages.sessions.current(request)
        if flow is None or session is None:  # the provider was removed from the configuration
            return self.pages.error_page("This account signs in at a provider this server no longer offers. "
                                         "Ask the operator to delete it.", status=409)
        return await self.send_to(flow, session, "/account/delete", user_id=user_id)

    async def send_to(self, flow: ProviderFlow, session: Session, next_url: str, *,
                      user_id: int | None = None) -> Response:
        """A new attempt of this browser session, and the redirect to the provider's authorization endpoint."""
        attempt = await self.identities.start(session, flow.provider.name, next_url, user_id=user_id)
        try:
            location = await flow.authorization_url(attempt)
        except ProviderUnavailable as exc:
            return self.unavailable(flow, str(exc))
        return RedirectResponse(location, status_code=303, headers=security_headers())

    async def form_targets(self, provider: str) -> tuple[str, ...]:
        """The provider's origin, for the CSP ``form-action`` of a form whose answer redirects there
        (browsers apply it to the redirect); none when the provider is unknown or down."""
        flow = self.flows.get(provider)
        try:
            return origin_of(await flow.authorization_endpoint()) if flow is not None else ()
        except ProviderUnavailable:
            return ()

    async def callback(self, request: Request) -> Response:
        flow = self.flows.get(request.path_params["name"])
        if flow is None:
            return self.unknown()
        provider = flow.provider
        answer = {key: value for key, value in request.query_params.items() if len(value) <= 4096}
        session = await self.pages.sessions.current(request)
        taken = await self.identities.take(answer.get("state", ""), session, provider.name)
        if taken is None:
            return self.pages.error_page("This sign-in has expired or was not started in this browser. "
                                         "Start again from the app.", status=400, code="invalid_state")
        attempt, next_url, reauthenticating = taken
        try:
            identity = await flow.identity(answer, attempt)
        except ProviderUnavailable as exc:
            return self.unavailable(flow, str(exc))
        except SignInRefused as exc:
            logger.warning("sign-in at %s refused: %s", provider.name, exc)
            await self.pages.record(request, EventKind.AUTH_FAILURE, "login_refused", stage="provider",
                                    provider=provider.name, reason=str(exc))
            return self.pages.error_page(f"Signing in with {provider.label} did not succeed. Start again from the app.",
                                         status=403, code="access_denied", heading="Sign-in failed")
        if reauthenticating is not None:
            return await self.finish_deletion(request, reauthenticating, identity.issuer, identity.subject)
        if not provider.admission.admits(identity.email, identity.orgs):
            await self.pages.record(request, EventKind.AUTH_FAILURE, "login_not_allowed", stage="provider",
                                    provider=provider.name)
            return self.pages.error_page(
                f"Your {provider.label} account ({identity.display}) may not sign in to {self.pages.app_name}. "
                "Ask its operator, or sign in with another account.", status=403, code="access_denied",
                heading="This account may not sign in")
        user, created = await self.identities.account(provider, identity)
        if created:
            await self.pages.record(request, EventKind.USER_PROVISIONED, "provisioned", subject=user.subject,
                                    provider=provider.name)
        if identity.grant is not None:  # asked for on the way to an app whose tools act here (asks_for_access)
            if next_url.startswith("/authorize?") or await self.pages.server.store.consents(user.id):
                await self.tokens.keep(user.id, provider.name, identity.grant)
            else:  # a link to grant it again, followed with no app connected any more: nothing acts for them
                await self.tokens.discard(flow, identity.grant)
        signed_in = await self.pages.sessions.sign_in(session, user.id)
        response = RedirectResponse(safe_next(next_url), status_code=303, headers=security_headers())
        self.pages.sessions.attach(response, signed_in)
        return response

    async def finish_deletion(self, request: Request, user_id: int, issuer: str, subject: str) -> Response:
        session = await self.pages.sessions.current(request)
        known = await self.identities.of(user_id)
        user = await self.pages.signed_in_user(session)
        if user is None or user.id != user_id or known is None or (known.issuer, known.subject) != (issuer, subject):
            return self.pages.error_page("You signed in again as someone else. Nothing was deleted.", status=403,
                                         code="access_denied", heading="Nothing was deleted")
        return await self.pages.delete_signed_in(user)
