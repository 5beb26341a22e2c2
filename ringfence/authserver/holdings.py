"""What the embedded authorization server keeps about people, registered for ``ringfence.privacy``.

The account and everything hanging off it: authorization codes, grants, refresh tokens, consents,
sign-in sessions, a login provider's identity of the account, its sign-ins under way and its tokens
there (sealed, for tools that act at the provider); and the
registered clients, deleted once idle. Deleting a person's account is one transaction, so access
ends at once (the server also refuses the account's still-unexpired access tokens from then on, their
grants being gone).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.sql import Select

from ringfence.authserver.identities import PENDING_SECONDS
from ringfence.authserver.models import (
    AuthorizationCode,
    BrowserSession,
    Consent,
    Grant,
    PendingSignIn,
    ProviderTokenRecord,
    RefreshToken,
    RegisteredClient,
    SignInIdentity,
    User,
)
from ringfence.authserver.oauth import ACCESS_TOKEN_SECONDS
from ringfence.personal_data import PurgeStep, Retention, RetentionRule, export_time, plural
from ringfence.store.database import Database
from ringfence.store.rows import delete_rows

HOUR, DAY = 3600, 86400

# Lifetimes fixed by the authorization server (not settings).
CODE_LIFETIME = "60 seconds"
REFRESH_LIFETIME = "30 days from its issue, rotated on every use"
SESSION_LIFETIME = "12 hours"

# A grant (one sign-in of one client, named by its access tokens' ``sid``) is kept while the purge keeps
# any refresh token of its family, and this long after it was made and after it was revoked: past the
# longest access-token lifetime, with a margin for clock leeway (at most 5 minutes) and the moment
# between a code's redemption and its refresh token's storage. A token whose grant is gone is refused.
GRANT_MARGIN_SECONDS = 3600
GRANT_KEPT_SECONDS = ACCESS_TOKEN_SECONDS + GRANT_MARGIN_SECONDS

# The tables keyed by the account, deleted with it (the grants would also go by foreign-key cascade;
# deleted here to be counted).
_OWNED_BY_ACCOUNT = (("authorization_codes", AuthorizationCode), ("grants", Grant), ("refresh_tokens", RefreshToken),
                     ("consents", Consent), ("browser_sessions", BrowserSession),
                     ("pending_sign_ins", PendingSignIn), ("sign_in_identities", SignInIdentity),
                     ("provider_tokens", ProviderTokenRecord))


def _duration(seconds: int) -> str:
    return plural(seconds // 3600, "hour") if seconds % 3600 == 0 else plural(seconds // 60, "minute")


def retention(kept: Retention) -> list[RetentionRule]:
    """Each kind the authorization server keeps, and for how long."""
    return [
        RetentionRule(
            "authorization_codes", f"OAuth authorization codes (stored as hashes; valid {CODE_LIFETIME}, once)",
            f"{plural(kept.authorization_code_hours, 'hour')} after expiry, so a replayed "
            "code still revokes the tokens it issued", "RINGFENCE_RETENTION_AUTHORIZATION_CODE_HOURS"),
        RetentionRule(
            "refresh_tokens", f"refresh tokens and their grant metadata (hashes; each valid {REFRESH_LIFETIME})",
            f"until every token of the same sign-in has expired or been revoked, plus "
            f"{plural(kept.refresh_token_days, 'day')}: a reused old token still revokes the "
            "whole family while any of it could be valid", "RINGFENCE_RETENTION_REFRESH_TOKEN_DAYS"),
        RetentionRule(
            "grants", "grants: each sign-in of an app to an account (which app, when, whether revoked; its "
            "access and refresh tokens name it)",
            f"while any refresh token of the same sign-in is kept, and at least "
            f"{_duration(GRANT_KEPT_SECONDS)} after it was made or revoked: {_duration(ACCESS_TOKEN_SECONDS)}, "
            f"the lifetime of its access tokens, plus {_duration(GRANT_MARGIN_SECONDS)}"),
        RetentionRule("browser_sessions", f"sign-in sessions of the account pages (hashes; {SESSION_LIFETIME})",
                      "until they expire or the user signs out"),
        RetentionRule("consents", "which apps a user connected, with the scopes they approved",
                      "until the user revokes them on /account or deletes their account"),
        RetentionRule(
            "idle_clients", "OAuth clients registered through dynamic registration (name, redirect URIs)",
            "kept while they hold a consent, token or code; otherwise "
            + (f"deleted {plural(kept.idle_client_days, 'day')} after registration"
               if kept.idle_client_days else "kept"),
            "RINGFENCE_RETENTION_IDLE_CLIENT_DAYS"),
        RetentionRule("accounts", "user accounts of the sign-in page (username, argon2id password hash)",
                      "until the account is deleted (by the user on /account, or `ringfence user delete`)"),
        RetentionRule("sign_in_identities", "for accounts of a login provider: the provider, its issuer and the "
                      "person's subject there, and the e-mail address it verified",
                      "with the account: until it is deleted"),
        RetentionRule("pending_sign_ins", f"sign-ins sent to a login provider and not yet back (hashes of their "
                      f"state; valid {_duration(PENDING_SECONDS)}, once)", "until they are used or expire"),
        RetentionRule("provider_tokens", "for apps whose tools act at a login provider: the person's access and "
                      "refresh tokens there, encrypted (AES-256-GCM), with the scopes granted",
                      "until the person removes the access on /account, disconnects their last app or deletes "
                      "their account, or the provider stops renewing them; at the first purge pass an hour or more "
                      "after the sign-in that asked for them if no app is connected then; an access token that "
                      "cannot be renewed goes once it expires"),
    ]


class AccountHoldings:
    """The sign-in accounts and what hangs off them (:class:`ringfence.personal_data.Holdings`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def purge_steps(self, kept: Retention, moment: float, *, dry_run: bool) -> list[PurgeStep]:
        def step(table: type, conditions: list[Any]) -> Any:
            return lambda: delete_rows(self.database, table, conditions, dry_run=dry_run)

        code_grace = kept.authorization_code_hours * HOUR
        families = _kept_families(moment - kept.refresh_token_days * DAY)
        grant_cutoff = moment - GRANT_KEPT_SECONDS
        steps = [
            ("authorization_codes", step(AuthorizationCode, [AuthorizationCode.expires_at < moment - code_grace])),
            ("refresh_tokens", step(RefreshToken, [RefreshToken.family_id.not_in(families)])),
            # A grant goes with the last refresh token of its family that the purge keeps (the same
            # condition, so a dry run counts what the real pass deletes), and not before the access tokens
            # it issued, or revoked, have expired (a token whose grant is gone is refused all the same).
            ("grants", step(Grant, [Grant.id.not_in(families), Grant.created_at < grant_cutoff,
                                    or_(Grant.revoked_at.is_(None), Grant.revoked_at < grant_cutoff)])),
            ("browser_sessions", step(BrowserSession, [BrowserSession.expires_at < moment])),
            ("pending_sign_ins", step(PendingSignIn, [PendingSignIn.expires_at < moment])),
            ("provider_tokens", step(ProviderTokenRecord, [ProviderTokenRecord.refresh_token.is_(None),
                                                           ProviderTokenRecord.expires_at < moment])),
        ]
        if days := kept.idle_client_days:
            steps.append(("idle_clients", step(RegisteredClient, [
                RegisteredClient.created_at < moment - days * DAY,
                RegisteredClient.client_id.not_in(select(Consent.client_id)),
                RegisteredClient.client_id.not_in(select(RefreshToken.client_id)),
                RegisteredClient.client_id.not_in(select(AuthorizationCode.client_id)),
            ])))
        else:
            steps.append(("idle_clients", _nothing))
        return steps

    async def holds(self, subject: str) -> bool:
        async with self.database.session() as session:
            return await session.scalar(select(User.id).where(User.subject == subject)) is not None

    async def export(self, subject: str) -> dict[str, Any]:
        async with self.database.session() as session:
            user = await session.scalar(select(User).where(User.subject == subject))
            if user is None:
                return {"account": None, "consents": [], "grants": [], "refresh_tokens": []}
            consents = [{"client_id": consent.client_id, "client_name": consent.client_name,
                         "scopes": consent.scope.split(), "updated_at": export_time(consent.updated_at)}
                        for consent in await session.scalars(select(Consent).where(Consent.user_id == user.id)
                                                             .order_by(Consent.client_id))]
            # A grant is one sign-in of one client; its id (the tokens' ``sid``) is not shown.
            grants = [{"client_id": grant.client_id, "created_at": export_time(grant.created_at),
                       "revoked_at": export_time(grant.revoked_at)}
                      for grant in await session.scalars(select(Grant).where(Grant.user_id == user.id)
                                                         .order_by(Grant.created_at, Grant.id))]
            tokens = select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(
                RefreshToken.created_at, RefreshToken.family_id)
            refresh_tokens = [{
                "client_id": token.client_id, "scopes": token.scope.split(), "resource": token.resource,
                "issued_at": export_time(token.created_at), "expires_at": export_time(token.expires_at),
                "used_at": export_time(token.used_at), "revoked_at": export_time(token.revoked_at)}
                for token in await session.scalars(tokens)]
            account = {"username": user.username, "subject": user.subject, "created_at": export_time(user.created_at)}
            identity = await session.get(SignInIdentity, user.id)
            if identity is not None:  # where the account signs in, as the provider knows the person
                account["signs_in_at"] = {"provider": identity.provider, "issuer": identity.issuer,
                                          "subject": identity.subject, "email": identity.email,
                                          "since": export_time(identity.created_at)}
            access = await session.get(ProviderTokenRecord, user.id)
            if access is not None:  # what the app's tools may do as the person there; never the tokens
                account["provider_access"] = {"provider": access.provider, "scopes": access.scope.split(),
                                              "kept_since": export_time(access.created_at),
                                              "access_token_expires_at": export_time(access.expires_at),
                                              "renewable": access.refresh_token is not None}
        return {"account": account, "consents": consents, "grants": grants, "refresh_tokens": refresh_tokens}

    async def delete(self, subject: str) -> dict[str, int]:
        """The account and everything hanging off it, in one transaction."""
        counts = {"account": 0, **{kind: 0 for kind, _ in _OWNED_BY_ACCOUNT}}
        async with self.database.session() as session:
            user_id = await session.scalar(select(User.id).where(User.subject == subject))
            if user_id is None:
                return counts
            for kind, table in _OWNED_BY_ACCOUNT:
                result = await session.execute(delete(table).where(table.user_id == user_id))  # type: ignore[attr-defined]
                counts[kind] = int(result.rowcount or 0)
            result = await session.execute(delete(User).where(User.id == user_id))
            counts["account"] = int(result.rowcount or 0)
        return counts


def _kept_families(cutoff: float) -> Select:
    # A family stays whole while any token of it could still be valid (or was revoked recently): its
    # used tokens are what lets a replayed one revoke the family (OAuth 2.1 §4.3.1).
    return select(RefreshToken.family_id).where(or_(
        RefreshToken.revoked_at.is_(None) & (RefreshToken.expires_at >= cutoff),
        RefreshToken.revoked_at >= cutoff,
    ))


async def _nothing() -> int:
    return 0
