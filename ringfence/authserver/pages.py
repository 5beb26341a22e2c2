"""The pages a person sees: the home page, sign-in, consent and connected apps (and the look of the
privacy disclosure page, privacy/page.py).

Every form carries the session's CSRF token; every page is sent with a CSP that forbids framing
(MCP security best practices: consent pages MUST prevent iframing and implement CSRF protection).
The consent page says, under each scope, what it lets the app do (``policy.unlocked_by``), and offers the
further scopes the app's tools need (``policy.scopes_beyond``), ticked, for the person to keep or untick:
a client whose step-up cannot widen its grant still reaches the tools the person allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ringfence.audit.records import EventKind
from ringfence.authserver.adapter import (
    StarletteOAuth2Request,
    oauth_request,
    parse_parameters,
    read_limited,
    to_starlette,
)
from ringfence.authserver.clients import OAuthClient
from ringfence.authserver.connected_apps import (
    connected_apps,
    describe_scopes,
    disconnected_location,
    disconnected_notice,
)
from ringfence.authserver.events import AuthEvents
from ringfence.authserver.models import User
from ringfence.authserver.oauth import McpAuthorizationServer, OAuthResponse
from ringfence.authserver.sessions import BrowserSessions, Session
from ringfence.authserver.throttle import SignInThrottle, address_key
from ringfence.authserver.users import UserStore
from ringfence.config import is_loopback_host
from ringfence.guards.confirmation import ConfirmationStore
from ringfence.guards.confirmation_text import visible
from ringfence.ops.ratelimit import RateLimitUnavailable
from ringfence.personal_data import DeletionIncomplete, SubjectRecords, UnknownSubject
from ringfence.policy import Unlocked
from ringfence.principal import identity_key

if TYPE_CHECKING:
    from ringfence.authserver.provider_pages import ProviderSignIn

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
STATIC_CSS = (Path(__file__).parent / "static" / "ringfence.css").read_bytes()
# Parameters a consent form carries back to /authorize; anything else is dropped.
OAUTH_PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method", "resource")
# The privacy disclosure (privacy/page.py): served wherever these pages are, and by every resource server;
# published as RFC 8414 op_policy_uri and RFC 9728 resource_policy_uri.
PRIVACY_PATH = "/privacy"
# A consent form's box for a scope offered besides the request (``also:contacts:write``), and its value when ticked.
ALSO_FIELD, TICKED = "also:", "yes"


class ScopeUnlocks(Protocol):
    """What the served app's tools make of scopes (``policy.ToolScopes``)."""

    def unlocks(self, requested: Iterable[str]) -> Mapping[str, tuple[Unlocked, ...]]: ...

    def beyond(self, requested: Iterable[str]) -> frozenset[str]: ...


class NoTools:
    """An authorization server that serves no tools of its own: nothing to say, nothing more to offer."""

    def unlocks(self, requested: Iterable[str]) -> Mapping[str, tuple[Unlocked, ...]]:
        return {}

    def beyond(self, requested: Iterable[str]) -> frozenset[str]:
        return frozenset()


def security_headers(form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    form_action = " ".join(("'self'", *form_targets))
    return {
        "content-security-policy": (
            f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def origin_of(uri: str | None) -> tuple[str, ...]:
    """The redirect's origin, for ``form-action``: browsers apply it to the redirect after a form post."""
    if not uri:
        return ()
    parts = urlsplit(uri)
    return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme in ("http", "https") and parts.netloc else ()


def render_page(name: str, status: int = 200, *, app_name: str, form_targets: tuple[str, ...] = (),
                **context: Any) -> HTMLResponse:
    """A template of this package, autoescaped, with the pages' CSP and security headers."""
    html = TEMPLATES.get_template(name).render(app_name=app_name, privacy_path=PRIVACY_PATH, **context)
    return HTMLResponse(html, status, headers=security_headers(form_targets))


async def stylesheet(_request: Request) -> Response:
    """The pages' one stylesheet (their CSP allows no other)."""
    return Response(STATIC_CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600",
                                                                "x-content-type-options": "nosniff"})


def safe_next(value: str | None) -> str:
    """Only a path on this server: never an open redirect."""
    if value and value.startswith(("/authorize?", "/account", "/confirm/")) and not value.startswith("//"):
        return value
    return "/account"


class Pages:
    def __init__(self, server: McpAuthorizationServer, *, users: UserStore, sessions: BrowserSessions,
                 logins: SignInThrottle, scope_text: Mapping[str, str], app_name: str,
                 confirmations: ConfirmationStore, subjects: SubjectRecords | None = None,
                 events: AuthEvents | None = None,
                 account_deleted: Callable[[str], None] = lambda subject: None,
                 scope_unlocks: ScopeUnlocks | None = None, local_passwords: bool = True) -> None:
        self.subjects = subjects
        self.local_passwords = local_passwords  # off: people sign in at a login provider only
        # Set when login providers are configured (authserver/provider_pages.py).
        self.provider_sign_in: ProviderSignIn | None = None
        # What each requested scope lets the app do, and what further scopes its tools need (policy.ToolScopes
        # over the served app's tools); nothing for an authorization server that serves no tools of its own.
        self.tool_scopes = scope_unlocks or NoTools()
        self.account_deleted = account_deleted  # tells the token verifiers to stop trusting the subject
        self.record = events or AuthEvents(None)
        self.server = server
        self.confirmations = confirmations
        self.users = users
        self.sessions = sessions
        self.logins = logins
        self.scope_text = scope_text
        self.app_name = app_name

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/account", self.account, methods=["GET"]),
            Route("/account/revoke", self.revoke, methods=["POST"]),
            Route("/account/export", self.export_data, methods=["POST"]),
            Route("/account/delete", self.delete_account, methods=["GET", "POST"]),
            Route("/confirm/{page_id}", self.confirm, methods=["GET", "POST"]),
            Route("/static/ringfence.css", stylesheet, methods=["GET"]),
        ]

    # Rendering -------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, *, session: Session | None = None,
               form_targets: tuple[str, ...] = (), **context: Any) -> HTMLResponse:
        response = render_page(name, status, app_name=self.app_name, form_targets=form_targets, **context)
        if session is not None:
            self.sessions.attach(response, session)
        return response

    def error_page(self, message: str, *, status: int = 400, code: str | None = None,
                   heading: str = "This request cannot continue") -> HTMLResponse:
        return self.render("error.html", status, heading=heading, message=message, error_code=code)

    def expired_form(self) -> HTMLResponse:
        return self.error_page("The form has expired or did not come from this site. Start again.",
                               status=403, code="invalid_csrf")

    async def posted_form(self, request: Request, session: Session | None) -> dict[str, str] | None:
        """The form's fields, or ``None`` when it is malformed or lacks this session's CSRF token."""
        try:
            form = dict(parse_parameters((await read_limited(request)).decode("utf-8")))
        except (OAuth2Error, UnicodeDecodeError):
            return None
        if session is None or not session.csrf_matches(form.get("csrf")):
            return None
        return form

    # Home ------------------------------------------------------------------------------------

    async def home(self, _request: Request) -> Response:
        """What this server is, for a person who opens its address: the app, where MCP clients
        connect, and the way to sign in. Nothing secret: the same for everyone."""
        return self.render("home.html", mcp_urls=sorted(self.server.resources))

    # Authorization ---------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        try:
            if request.method == "POST":
                form = await self.posted_form(request, session)
                if form is None or session is None or session.user_id is None:
                    return self.expired_form()
                params = [(k, form[k]) for k in OAUTH_PARAMETERS if k in form]
                oauth = StarletteOAuth2Request("GET", self.server.issuer + "/authorize", request.headers, params, [])
            elif not request.url.query:
                return self.opened_directly()
            else:
                oauth = await oauth_request(request, self.server.issuer)
            grant = await self.server.respond(self.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            return self.authorization_error(error)
        user = await self.signed_in_user(session)
        if user is None:
            return await self.login_page(request, session, next_url=f"/authorize?{request.url.query}",
                                         redirect_uri=grant.redirect_uri)
        scopes = frozenset((oauth.scope or "").split())
        client = grant.client
        if request.method == "POST":
            allowed = form.get("decision") == "allow"
            if allowed:
                kept = frozenset(scope for scope in self.offered(scopes, client)
                                 if form.get(ALSO_FIELD + scope) == TICKED)
                if kept:  # RFC 6749 §3.3: the person widened the request; the token response says the scope
                    scopes |= kept
                    params = [*((k, v) for k, v in params if k != "scope"), ("scope", " ".join(sorted(scopes)))]
                    oauth = StarletteOAuth2Request("GET", self.server.issuer + "/authorize", request.headers,
                                                   params, [])
                    try:
                        grant = await self.server.respond(self.server.get_consent_grant, oauth)
                    except OAuth2Error as error:
                        return self.authorization_error(error)
                await self.server.store.remember_consent(user.id, client.client_id, client.client_name, scopes)
                await self.record(request, EventKind.CONSENT_GRANTED, "granted", subject=user.subject,
                                  client_id=client.client_id, scopes=sorted(scopes))
            elif self.provider_sign_in is not None:  # tokens the sign-in got for this app's tools: not without an app
                await self.provider_sign_in.disconnected(user.id)
            return await self.finish(oauth, grant, user if allowed else None)
        if scopes <= await self.server.store.consented_scopes(user.id, client.client_id):
            return await self.finish(oauth, grant, user)  # consent remembered for these scopes
        return self.consent_page(session, user, oauth, grant, scopes)

    def offered(self, requested: frozenset[str], client: OAuthClient) -> frozenset[str]:
        """The scopes offered besides the request: those the app's tools need that it does not grant, and
        that the client may have. Never more than the page showed: a posted box for any other is ignored."""
        beyond = self.tool_scopes.beyond(requested)
        allowed = client.allowed_scopes  # a metadata document's ``scope`` bounds its client
        return beyond if allowed is None else beyond & allowed

    def consent_page(self, session, user: User, oauth, grant, scopes: frozenset[str]) -> Response:  # type: ignore[no-untyped-def]
        client = grant.client
        also = self.offered(scopes, client)
        redirect_host = urlsplit(grant.redirect_uri).netloc
        loopback_only = all(is_loopback_host(urlsplit(uri).hostname or "") for uri in client.redirect_uris)
        params = [(name, oauth.payload.data[name]) for name in OAUTH_PARAMETERS if name in oauth.payload.data]
        return self.render(
            "consent.html", session=session, form_targets=origin_of(grant.redirect_uri),
            client_name=client.client_name, verified_host=client.verified_host, redirect_host=redirect_host,
            loopback_only=loopback_only, username=user.username, csrf=session.csrf_token, oauth_params=params,
            scopes=describe_scopes(scopes, self.scope_text), unlocks=self.unlocks(scopes, also),
            also=describe_scopes(also, self.scope_text), also_field=ALSO_FIELD, ticked=TICKED,
        )

    def unlocks(self, requested: frozenset[str], also: frozenset[str]) -> dict[str, tuple[Unlocked, ...]]:
        """What each scope lets the app do: a requested one as granted with the request alone (the person
        may untick the rest), an offered one as granted with the request and the rest of the offer."""
        with_offer = self.tool_scopes.unlocks(requested | also)
        return {**self.tool_scopes.unlocks(requested), **{scope: with_offer.get(scope, ()) for scope in also}}

    async def finish(self, oauth, grant, user: User | None) -> Response:  # type: ignore[no-untyped-def]
        response = await self.server.respond(self.server.create_authorization_response, oauth, user, grant)
        return to_starlette(response)

    def authorization_error(self, error: OAuth2Error) -> Response:
        """Back to the client when its redirect URI is verified (with RFC 9207 ``iss``), else a page here."""
        if error.redirect_uri:
            response = OAuthResponse(*error())
            self.server.issuer_parameter.add_issuer_parameter(self.server, response)
            return to_starlette(response)
        page = self.error_page(error.description or "The authorization request is invalid.", code=error.error,
                               status=error.status_code if error.status_code >= 400 else 400)
        retry_after = dict(error.get_headers()).get("Retry-After")
        if retry_after is not None:  # temporarily_unavailable: the client metadata fetches are at their bound
            page.headers["retry-after"] = retry_after
        return page

    def opened_directly(self) -> HTMLResponse:
        """``/authorize`` with no request at all: a person followed a link or typed the address."""
        return self.error_page("This page is opened by an app you are connecting to your account. "
                               "Start from that app, and it will bring you here.",
                               heading="Open this page from the app you are connecting")

    async def signed_in_user(self, session: Session | None) -> User | None:
        if session is None or session.user_id is None:
            return None
        return await self.server.store.user(session.user_id)

    # Sign-in ---------------------------------------------------------------------------------

    async def login_page(self, request: Request, session: Session | None, *, next_url: str,
                         redirect_uri: str | None = None, error: str | None = None, username: str = "",
                         status: int = 200) -> Response:
        session = session or await self.sessions.ensure(request)
        providers = self.provider_sign_in.choices(safe_next(next_url)) if self.provider_sign_in else []
        return self.render("login.html", status, session=session, form_targets=origin_of(redirect_uri),
                           csrf=session.csrf_token, next=safe_next(next_url), error=error, username=username,
                           providers=providers, local_passwords=self.local_passwords)

    async def login(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        if request.method == "GET":
            return await self.login_page(request, session, next_url=request.query_params.get("next", "/account"))
        if not self.local_passwords:
            return self.error_page("Passwords are turned off here: sign in with one of the providers offered.",
                                   status=403, code="access_denied")
        form = await self.posted_form(request, session)
        if form is None:
            return self.expired_form()
        username = form.get("username", "")[:64]
        account, address = f"user:{username.lower()}", address_key(request)
        refused = await self.password_attempt(account, address)
        if refused is not None:
            status, message, retry = refused
            response = await self.login_page(request, session, next_url=form.get("next", ""), username=username,
                                              error=message, status=status)
            response.headers["retry-after"] = retry
            return response
        user = None
        try:
            user = await self.users.authenticate(username, form.get("password", ""))
        finally:  # only failures count: a success gives its attempt back (authserver/throttle.py)
            await self.logins.settle(account, address, succeeded=user is not None)
        if user is None:  # the attempt stays spent: a failure
            await self.record(request, EventKind.AUTH_FAILURE, "login_failed", stage="login")
            return await self.login_page(request, session, next_url=form.get("next", ""), username=username,
                                         error="The username or password is wrong.", status=401)
        signed_in = await self.sessions.sign_in(session, user.id)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303, headers=security_headers())
        self.sessions.attach(response, signed_in)
        return response

    async def password_attempt(self, account: str, address: str) -> tuple[int, str, str] | None:
        """Spend a password attempt; when refused, (status, message, Retry-After): 429, or 503 if the
        throttle cannot answer (fail closed: no password is checked unthrottled)."""
        try:
            decision = await self.logins.attempt(account, address)
        except RateLimitUnavailable:
            return 503, "Sign-in is unavailable right now. Try again later.", "1"
        if not decision.allowed:
            return 429, "Too many failed attempts. Try again later.", decision.retry_after_header
        return None

    async def logout(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        if session is None or await self.posted_form(request, session) is None:
            return self.expired_form()
        await self.sessions.end(session)
        response = RedirectResponse("/login", status_code=303, headers=security_headers())
        self.sessions.clear(response)
        return response

    # Connected apps --------------------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        user = await self.signed_in_user(session)
        if user is None:
            return await self.login_page(request, session, next_url="/account")
        consents = await self.server.store.consents(user.id)
        apps = await connected_apps(consents, self.server.store, self.server.clients, self.scope_text)
        held = await self.provider_sign_in.held_access(user.id) if self.provider_sign_in is not None else None
        return self.render("account.html", session=session, username=user.username, apps=apps, provider_access=held,
                           disconnected=disconnected_notice(session.id, request.query_params),  # type: ignore[union-attr]
                           csrf=session.csrf_token)  # type: ignore[union-attr]

    # Confirmation of destructive and irreversible tool calls (guards/confirmation.py) --------------

    async def confirm(self, request: Request) -> Response:
        """The signed-in owner of a pending confirmation sees who asks, and what the app reports the call
        would do as quoted data (guards/confirmation_text.py), and confirms or declines."""
        session = await self.sessions.current(request)
        user = await self.signed_in_user(session)
        page_id = request.path_params["page_id"]
        if user is None:
            return await self.login_page(request, session, next_url=f"/confirm/{page_id}")
        owner = identity_key(self.server.issuer, user.subject)  # as the confirmation's owner_key wrote it
        pending = await self.confirmations.page(page_id)
        if pending is None or pending.owner != owner or pending.status != "pending":
            return self.error_page("There is nothing to confirm here: the request was used, expired, or is not yours.",
                                   status=404, heading="Nothing to confirm")
        asking = [app for app in await connected_apps(await self.server.store.consents(user.id), self.server.store,
                                                      self.server.clients, self.scope_text)
                  if app.client_id == pending.client_id]
        shown = {"tool": pending.tool, "client": asking[0] if asking else None}
        if request.method == "GET":
            return self.render("confirm.html", session=session, preview=visible(pending.preview), page_id=page_id,
                               username=user.username, csrf=session.csrf_token, **shown)  # type: ignore[union-attr]
        form = await self.posted_form(request, session)
        if form is None:
            return self.expired_form()
        approve = form.get("decision") == "confirm"
        if not await self.confirmations.decide(page_id, owner, approve=approve):
            return self.error_page("This request expired or was already answered.", status=409,
                                   heading="Nothing to confirm")
        kind = EventKind.CONFIRMATION_ACCEPTED if approve else EventKind.CONFIRMATION_DECLINED
        await self.record(request, kind, "approved" if approve else "declined", subject=user.subject,
                          client_id=pending.client_id, channel="page", tool=pending.tool)
        return self.render("confirm.html", decided="confirmed" if approve else "declined", **shown)

    async def revoke(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        user = await self.signed_in_user(session)
        form = await self.posted_form(request, session)
        if user is None or form is None:
            return self.expired_form()
        client_id = form.get("client_id", "")[:2048]
        names = [consent.client_name for consent in await self.server.store.consents(user.id)
                 if consent.client_id == client_id]
        await self.server.store.revoke_consent(user.id, client_id)
        await self.record(request, EventKind.CONSENT_REVOKED, "revoked", subject=user.subject, client_id=client_id)
        if self.provider_sign_in is not None:
            await self.provider_sign_in.disconnected(user.id)
        location = disconnected_location(session.id, names[0]) if names else "/account"  # type: ignore[union-attr]
        return RedirectResponse(location, status_code=303, headers=security_headers())

    # The person's own data (ringfence/privacy/subjects.py) -----------------------------------------

    async def export_data(self, request: Request) -> Response:
        """Everything held about the signed-in user, as a JSON download (CSRF-checked POST)."""
        session = await self.sessions.current(request)
        user = await self.signed_in_user(session)
        form = await self.posted_form(request, session)
        if user is None or form is None or self.subjects is None:
            return self.expired_form()
        try:
            document = await self.subjects.export(user.subject)
        except UnknownSubject:  # the account was deleted meanwhile
            return self.expired_form()
        body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True).encode()
        headers = {**security_headers(), "content-disposition": 'attachment; filename="my-data.json"'}
        return Response(body, media_type="application/json", headers=headers)

    async def delete_account(self, request: Request) -> Response:
        """Deletion of the signed-in user's account and data, after they re-enter their password (or sign in
        again at their login provider)."""
        session = await self.sessions.current(request)
        user = await self.signed_in_user(session)
        if user is None or session is None:
            if request.method == "GET":
                return await self.login_page(request, session, next_url="/account/delete")
            return self.expired_form()
        # An account of a login provider has no password to enter: the provider signs the person in again.
        sign_in = self.provider_sign_in
        provider = await sign_in.provider_of(user.id) if sign_in is not None else None
        if request.method == "GET":
            label, targets = ((sign_in.label_of(provider), await sign_in.form_targets(provider))
                              if sign_in is not None and provider is not None else (None, ()))
            return self.render("delete_account.html", session=session, username=user.username,
                               csrf=session.csrf_token, provider=label, form_targets=targets)
        form = await self.posted_form(request, session)
        if form is None or self.subjects is None:
            return self.expired_form()
        if sign_in is not None and provider is not None:  # deleted when the same person is back (provider_pages)
            return await sign_in.reauthenticate(request, provider, user.id)
        account, address = f"user:{user.username.lower()}", address_key(request)
        refused = await self.password_attempt(account, address)
        if refused is not None:  # the password check shares the sign-in page's throttle
            status, message, retry = refused
            response = self.render("delete_account.html", status, username=user.username, csrf=session.csrf_token,
                                   error=message)
            response.headers["retry-after"] = retry
            return response
        confirmed = None
        try:
            confirmed = await self.users.authenticate(user.username, form.get("password", ""))
        finally:
            await self.logins.settle(account, address, succeeded=confirmed is not None)
        if confirmed is None:
            await self.record(request, EventKind.AUTH_FAILURE, "login_failed", subject=user.subject,
                              stage="account_delete")  # password guessing through a stolen session
            return self.render("delete_account.html", 401, username=user.username, csrf=session.csrf_token,
                               error="The password is wrong. Nothing was deleted.")
        return await self.delete_signed_in(user)

    async def delete_signed_in(self, user: User) -> Response:
        """Delete the account whose owner just proved it again (password, or a fresh provider sign-in)."""
        assert self.subjects is not None
        message = "Your account and your data were deleted, and you are signed out."
        try:
            await self.subjects.delete(user.subject, channel="account_page")
        except UnknownSubject:
            pass  # deleted meanwhile (another tab, or the operator): the outcome is the same
        except DeletionIncomplete:  # recorded in the audit log under the subject, for the operator to finish
            message = ("Your account was deleted and you are signed out, but some of your data could not be "
                       "deleted yet. The operator has been told and will finish it.")
        self.account_deleted(user.subject)
        response = self.render("error.html", heading="Account deleted", message=message, error_code=None)
        self.sessions.clear(response)
        return response
