"""The authorization server's tables. Codes, refresh tokens, secrets and sessions are stored only as hashes."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ringfence.store.database import InternalModel


class User(InternalModel):
    __tablename__ = "ringfence_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True)  # the opaque ``sub`` of its tokens
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id; empty: signs in at a login provider only
    created_at: Mapped[int] = mapped_column(BigInteger)


class RegisteredClient(InternalModel):
    """A client registered through RFC 7591. Clients identified by a metadata URL are fetched, not stored."""

    __tablename__ = "ringfence_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    client_metadata: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuthorizationCode(InternalModel):
    __tablename__ = "ringfence_authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(2048))
    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    family_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class Grant(InternalModel):
    """What one authorization (a code exchanged) gave a client; its access tokens name it (``sid``)
    and its refresh tokens are one rotation family. Revoked, or gone with its user, it ends them all."""

    __tablename__ = "ringfence_grants"
    __table_args__ = (Index("ix_ringfence_grants_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the refresh-token family id
    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class RefreshToken(InternalModel):
    """One refresh token of a rotation family; reuse of a used one revokes the whole family."""

    __tablename__ = "ringfence_refresh_tokens"
    __table_args__ = (Index("ix_ringfence_refresh_family", "family_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(2048))
    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class Consent(InternalModel):
    """What a user allowed a client, remembered so the consent page is shown only for new scopes."""

    __tablename__ = "ringfence_consents"

    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(2048), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class BrowserSession(InternalModel):
    """A sign-in session of the login/consent pages; the cookie holds the id, the table its hash."""

    __tablename__ = "ringfence_browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)


class SignInIdentity(InternalModel):
    """Who an account is at a login provider: the provider's issuer and subject, never its e-mail
    (an address can change hands; OpenID Connect Core §5.7). One per account; no linking."""

    __tablename__ = "ringfence_sign_in_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_ringfence_sign_in_identities"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))  # verified by the provider, or none
    created_at: Mapped[int] = mapped_column(BigInteger)


class PendingSignIn(InternalModel):
    """A sign-in sent to a login provider, bound to the browser session that started it and used once;
    for an account deletion, ``user_id`` is the account the provider must sign in again."""

    __tablename__ = "ringfence_pending_sign_ins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_url: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class ProviderTokenRecord(InternalModel):
    """A person's tokens at their login provider, kept for tools declared with ``provider_scopes=``
    (authserver/provider_tokens.py). The tokens are sealed (AES-256-GCM, store/sealed.py), never hashed:
    they are sent to the provider."""

    __tablename__ = "ringfence_provider_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("ringfence_users.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(Text)  # what the provider granted, space-separated
    access_token: Mapped[str] = mapped_column(Text)  # sealed
    refresh_token: Mapped[str | None] = mapped_column(Text)  # sealed; none when the provider gave none
    expires_at: Mapped[int | None] = mapped_column(BigInteger)  # of the access token; none: not said
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)  # each refresh; an instance refreshing claims the row first
    refreshing_until: Mapped[int | None] = mapped_column(BigInteger)
