"""People's tokens at their login provider, kept for the tools that act there as them (``provider_scopes=``).

Off unless a tool declares ``provider_scopes=``. Then, for each account that signs in at such a provider:

- a sign-in on the way to an app, or back to it from a tool's link (``upstream.asks_for_access``), asks
  for the tools' scopes there (and a refresh token where the provider offers one), and while the person
  has an app connected the tokens it returns are kept in one row per account, sealed with AES-256-GCM
  under a 0600 key file in the data folder (``provider-tokens.key``; store/sealed.py), each value bound
  to its row and column;
- a tool reads the person's access token with ``await current_principal().provider_token(name)``: only a
  tool that declares scopes there, only for the caller of its call, and only a token granted those
  scopes; an access token about to expire is refreshed first, by one instance at a time (it claims
  the row), so a provider that rotates refresh tokens never sees one used twice;
- they are deleted when the person removes the access on ``/account``, disconnects their last app (or
  declines the app the sign-in was for, with none connected, or leaves its consent page unanswered for
  an hour), or deletes their account (with it, in one transaction), when the provider refuses to renew
  them, and at start-up when no tool acts at that provider any more; all but the last three also ask the
  provider to revoke them (RFC 7009, or GitHub's API);
- they are never logged, never shown on a page, never in the export (which says which provider and scopes),
  and never sent to the MCP client (the tool wrapper withholds a result that contains one).

A token that cannot be had is a :class:`ringfence.ToolError` for the tool: its message tells the person
to sign in at the provider again (with the link), or to try again when the provider is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, delete, exists, select, update

from ringfence.authserver.models import Consent, ProviderTokenRecord, SignInIdentity, User
from ringfence.authserver.store import now
from ringfence.authserver.upstream import (
    RENEW_ACCESS_NEXT,
    ProviderFlow,
    ProviderGrant,
    ProviderUnavailable,
    SignInRefused,
)
from ringfence.errors import ToolError
from ringfence.principal import Principal, ProviderToken
from ringfence.store.database import Database
from ringfence.store.sealed import SealBroken, Sealer

logger = logging.getLogger("ringfence.authserver")

KEY_NAME = "provider-tokens"  # the key file in the data folder: provider-tokens.key
RENEW_BEFORE_SECONDS = 60  # an access token this close to its expiry is refreshed before it is handed out
CLAIM_SECONDS = 15  # how long an instance refreshing a row holds it; another waits for its result meanwhile
WAIT_STEP_SECONDS = 0.1
# A sign-in on the way to an app keeps the tokens before the consent page is answered; with no app
# connected this long after, they are deleted (and revoked) by forget_unconnected.
UNCONNECTED_SECONDS = 3600
# The row's account has no consent: one indexed lookup per row (a NOT IN would read every consent).
NO_APP_CONNECTED = ~exists().where(Consent.user_id == ProviderTokenRecord.user_id)


@dataclass(frozen=True)
class HeldAccess:
    """What the account page and the export say of the tokens kept for a person (never the tokens)."""

    provider: str
    scopes: frozenset[str]
    expires_at: int | None
    refreshable: bool
    kept_since: int


class ProviderTokens:
    """The sealed store of provider tokens, and the :class:`ringfence.principal.ProviderTokenSource` of tools."""

    def __init__(self, database: Database, data_dir: Path, flows: Mapping[str, ProviderFlow], *, issuer: str,
                 sign_in_url: str) -> None:
        self.database = database
        self.flows = {name: flow for name, flow in flows.items() if flow.access_scopes}
        self.issuer = issuer  # only this server's principals have an account here
        self.sign_in_url = sign_in_url  # the sign-in page, for the message of a tool that needs the person back
        self._sealer: Sealer | None = None
        self._data_dir = data_dir

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:  # the key file is made when first needed, not for apps that keep no tokens
            self._sealer = Sealer.in_data_dir(self._data_dir, KEY_NAME)
        return self._sealer

    def acts_at(self, provider: str) -> bool:
        return provider in self.flows

    # Kept, forgotten ------------------------------------------------------------------------------

    async def keep(self, user_id: int, provider: str, grant: ProviderGrant) -> None:
        """The tokens of a sign-in at ``provider``, replacing what was kept for the account."""
        moment = now()
        async with self.database.session() as db:
            await db.execute(delete(ProviderTokenRecord).where(ProviderTokenRecord.user_id == user_id))
            db.add(ProviderTokenRecord(user_id=user_id, provider=provider, scope=" ".join(sorted(grant.scopes)),
                                       created_at=moment, updated_at=moment,
                                       **self._sealed(user_id, provider, grant)))

    async def forget(self, user_id: int, *, revoke: bool, unless_connected: bool = False) -> bool:
        """Delete the account's tokens (and, with ``revoke``, ask the provider to end them); whether any were kept.
        With ``unless_connected``, only if the delete finds no app connected to the account (an app connected
        while it runs is not seen: then the person signs in at the provider again)."""
        conditions = [ProviderTokenRecord.user_id == user_id]
        if unless_connected:
            conditions.append(NO_APP_CONNECTED)
        deleted = await self._deleted(*conditions)
        if revoke:
            await self._revoke_all(deleted)
        return bool(deleted)

    async def forget_unconnected(self, moment: float | None = None) -> int:
        """Delete and revoke the tokens of accounts that connected no app within ``UNCONNECTED_SECONDS`` of the
        sign-in that kept them (the person left the consent page unanswered); how many accounts.
        Run by the server's purge schedule, which can reach the provider (``ringfence privacy purge`` cannot)."""
        cutoff = int((time.time() if moment is None else moment) - UNCONNECTED_SECONDS)
        deleted = await self._deleted(ProviderTokenRecord.created_at < cutoff, NO_APP_CONNECTED)
        await self._revoke_all(deleted)
        if deleted:
            logger.info("deleted the login-provider tokens of %d accounts that connected no app", len(deleted))
        return len(deleted)

    async def _deleted(self, *conditions: ColumnElement[bool]) -> list[ProviderTokenRecord]:
        """Delete the rows meeting ``conditions``, as the delete finds them; the rows deleted. Only these are
        revoked: a sign-in replacing a row meanwhile is neither deleted nor revoked."""
        async with self.database.session() as db:
            return list(await db.scalars(delete(ProviderTokenRecord).where(*conditions).returning(ProviderTokenRecord)))

    async def _revoke_all(self, records: list[ProviderTokenRecord]) -> None:
        """Ask the provider to end the tokens of rows already deleted (best effort, one at a time)."""
        for record in records:
            flow = self.flows.get(record.provider)
            if flow is None:
                continue
            try:
                grant = self._opened(record)
            except SealBroken as exc:  # deleted here all the same; it ends when it expires
                logger.warning("the provider %s could not be asked to revoke a person's tokens: %s",
                               record.provider, exc)
            else:
                await self.discard(flow, grant)

    async def discard(self, flow: ProviderFlow, grant: ProviderGrant) -> None:
        """Ask the provider to end tokens that are not kept (best effort: otherwise they end when they expire)."""
        try:
            await flow.revoke(grant)
        except ProviderUnavailable as exc:
            logger.warning("the provider %s could not be asked to revoke a person's tokens: %s",
                           flow.provider.name, exc)

    async def forget_undeclared(self) -> int:
        """At start-up: delete tokens kept for providers no tool acts at any more."""
        async with self.database.session() as db:
            gone = await db.execute(delete(ProviderTokenRecord).where(
                ProviderTokenRecord.provider.not_in(list(self.flows))))
        return int(gone.rowcount or 0)

    async def held(self, user_id: int) -> HeldAccess | None:
        async with self.database.session() as db:
            record = await db.get(ProviderTokenRecord, user_id)
        if record is None:
            return None
        return HeldAccess(record.provider, frozenset(record.scope.split()), record.expires_at,
                          record.refresh_token is not None, record.created_at)

    # Handed to tools ------------------------------------------------------------------------------

    async def token_for(self, principal: Principal, provider: str, scopes: frozenset[str]) -> ProviderToken:
        flow = self.flows.get(provider)
        if flow is None or principal.issuer != self.issuer:
            raise ToolError(f"This app does not act at {provider} for this account.")
        async with self.database.session() as db:
            found = (await db.execute(select(User.id, SignInIdentity.provider).outerjoin(
                SignInIdentity, SignInIdentity.user_id == User.id).where(User.subject == principal.subject))).first()
            record = await db.get(ProviderTokenRecord, found[0]) if found is not None else None
        if found is None or found[1] != provider:  # accounts are never linked: signing in there makes another
            raise ToolError(f"Your account here does not sign in with {flow.provider.label}, so this app cannot "
                            f"act for you there.")
        if record is None or record.provider != provider:
            raise self.sign_in_again(flow, "has no access")
        if not scopes <= frozenset(record.scope.split()):
            raise self.sign_in_again(flow, "was not granted what this needs")
        if record.expires_at is not None and record.expires_at <= time.time() + RENEW_BEFORE_SECONDS:
            record = await self._renewed(record, flow)
        try:
            grant = self._opened(record)
        except SealBroken:  # another key file, or an altered row: nothing usable is kept
            logger.error("the %s tokens of an account do not open with provider-tokens.key; deleted", provider)
            await self.forget(record.user_id, revoke=False)
            raise self.sign_in_again(flow, "has no access") from None
        return ProviderToken(provider, grant.access_token, frozenset(record.scope.split()), grant.expires_at)

    def sign_in_again(self, flow: ProviderFlow, why: str) -> ToolError:
        link = f"{self.sign_in_url}/{flow.provider.name}?{urlencode({'next': RENEW_ACCESS_NEXT})}"
        return ToolError(f"This app {why} at {flow.provider.label} for you. Sign in with {flow.provider.label} "
                         f"again to allow it: {link}")

    async def _renewed(self, record: ProviderTokenRecord, flow: ProviderFlow) -> ProviderTokenRecord:
        """The row after its access token was refreshed, here or by another instance that claimed it first."""
        if record.refresh_token is None:
            await self.forget(record.user_id, revoke=False)
            raise self.sign_in_again(flow, "no longer has access")
        moment = now()
        async with self.database.session() as db:  # the claim: one refresh per row at a time, across instances
            claimed = await db.execute(update(ProviderTokenRecord).where(
                ProviderTokenRecord.user_id == record.user_id, ProviderTokenRecord.updated_at == record.updated_at,
                (ProviderTokenRecord.refreshing_until.is_(None)) | (ProviderTokenRecord.refreshing_until < moment),
            ).values(refreshing_until=moment + CLAIM_SECONDS))
        if claimed.rowcount != 1:
            return await self._refreshed_elsewhere(record, flow)
        try:
            grant = await flow.refresh(self._opened(record))
        except (SignInRefused, SealBroken) as exc:
            logger.warning("the %s refresh token of an account was refused (%s); its tokens are deleted",
                           record.provider, exc)
            await self.forget(record.user_id, revoke=False)
            raise self.sign_in_again(flow, "no longer has access") from None
        except ProviderUnavailable as exc:
            logger.warning("login provider %s unavailable for a token refresh: %s", record.provider, exc)
            await self._release(record.user_id)
            raise ToolError(f"{flow.provider.label} cannot be reached right now. Try again in a few minutes.") from None
        async with self.database.session() as db:
            await db.execute(update(ProviderTokenRecord).where(ProviderTokenRecord.user_id == record.user_id).values(
                scope=" ".join(sorted(grant.scopes)), updated_at=max(now(), record.updated_at + 1),
                refreshing_until=None, **self._sealed(record.user_id, record.provider, grant)))
            renewed = await db.get(ProviderTokenRecord, record.user_id, populate_existing=True)
        if renewed is None:  # the account or its access was deleted meanwhile
            raise self.sign_in_again(flow, "has no access")
        return renewed

    async def _refreshed_elsewhere(self, record: ProviderTokenRecord, flow: ProviderFlow) -> ProviderTokenRecord:
        deadline = time.monotonic() + CLAIM_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(WAIT_STEP_SECONDS)
            async with self.database.session() as db:
                current = await db.get(ProviderTokenRecord, record.user_id, populate_existing=True)
            if current is None:
                raise self.sign_in_again(flow, "no longer has access")
            if current.updated_at != record.updated_at:
                return current
            if current.refreshing_until is None or current.refreshing_until < now():  # the claimant gave up
                return await self._renewed(current, flow)
        raise ToolError(f"{flow.provider.label} is slow to answer right now. Try again in a few minutes.")

    async def _release(self, user_id: int) -> None:
        async with self.database.session() as db:
            await db.execute(update(ProviderTokenRecord).where(ProviderTokenRecord.user_id == user_id)
                             .values(refreshing_until=None))

    # Sealing --------------------------------------------------------------------------------------

    def _sealed(self, user_id: int, provider: str, grant: ProviderGrant) -> dict[str, object]:
        context = f"ringfence_provider_tokens|{user_id}|{provider}"
        return {"access_token": self.sealer.seal(grant.access_token, f"{context}|access_token"),
                "refresh_token": None if grant.refresh_token is None
                else self.sealer.seal(grant.refresh_token, f"{context}|refresh_token"),
                "expires_at": grant.expires_at}

    def _opened(self, record: ProviderTokenRecord) -> ProviderGrant:
        context = f"ringfence_provider_tokens|{record.user_id}|{record.provider}"
        refresh = (None if record.refresh_token is None
                   else self.sealer.open(record.refresh_token, f"{context}|refresh_token"))
        return ProviderGrant(self.sealer.open(record.access_token, f"{context}|access_token"), refresh,
                             record.expires_at, frozenset(record.scope.split()))
