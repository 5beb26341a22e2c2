"""OAuth clients as the authorization server sees them, from a metadata document URL or RFC 7591.

Client ID Metadata Documents are preferred (MCP 2025-11-25: SHOULD support); registered clients
are the fallback. Either way the client's redirect URIs are matched exactly.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from ringfence.authserver.cimd import ClientMetadataFetcher, is_client_id_url
from ringfence.authserver.models import RegisteredClient
from ringfence.authserver.scopes import ScopePolicy
from ringfence.authserver.store import AuthStore, secret_hash
from ringfence.config import CHATGPT_REDIRECT_URIS, is_loopback_host

_PLACEHOLDER = re.compile(r"\\\{[a-z_]+\\\}")


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    """Authlib's view of one client; immutable, built per request."""

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    allowed_scopes: frozenset[str] | None
    scope_policy: ScopePolicy
    secret_hash: str | None = None
    from_metadata_document: bool = False
    # The public keys of a ``private_key_jwt`` client (RFC 7591 §2: one or the other, never both).
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def verified_host(self) -> str | None:
        """The domain that vouches for this client: the host of its metadata URL, if it has one."""
        return urlsplit(self.client_id).hostname if self.from_metadata_document else None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return self.scope_policy.grantable(scope, self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # OAuth 2.1 §4.1.1: exact string match

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(secret_hash(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class RedirectPolicy:
    """Which redirect URIs a dynamically registered client may use.

    Entries are exact URLs, or URLs with one ``{name}`` placeholder standing for a single path
    segment. Loopback redirect URIs (RFC 8252 §7.3) are allowed unless ``allow_loopback`` is off.
    """

    def __init__(self, allowed: tuple[str, ...] = CHATGPT_REDIRECT_URIS, *, allow_loopback: bool = True) -> None:
        self.allowed = allowed
        self.allow_loopback = allow_loopback
        self._patterns = [
            re.compile("^" + _PLACEHOLDER.sub("[A-Za-z0-9_-]{1,128}", re.escape(entry)) + "$") for entry in allowed
        ]

    def permits(self, uri: str) -> bool:
        try:
            parts = urlsplit(uri)
        except ValueError:
            return False
        if parts.fragment or parts.username or parts.password or not parts.hostname:
            return False
        if parts.scheme == "http" and is_loopback_host(parts.hostname):
            return self.allow_loopback  # MCP: redirect URIs MUST be localhost or https
        if parts.scheme != "https":
            return False
        return any(pattern.match(uri) for pattern in self._patterns)


class ClientResolver:
    """Finds a client by id: fetches its metadata document for a URL id, else reads the registry."""

    def __init__(self, store: AuthStore, fetcher: ClientMetadataFetcher, scopes: ScopePolicy,
                 *, allow_loopback_metadata: bool) -> None:
        self.store = store
        self.fetcher = fetcher
        self.scopes = scopes
        self.allow_loopback_metadata = allow_loopback_metadata

    def names_document(self, client_id: str) -> bool:
        """Whether ``client_id`` is a metadata document URL (fetched), not a registered client's id (read)."""
        return is_client_id_url(client_id, allow_loopback=self.allow_loopback_metadata)

    async def get(self, client_id: str) -> OAuthClient | None:
        """The client, or ``None`` when unknown; raises ``ClientMetadataError`` for a bad document."""
        if self.names_document(client_id):
            document = await self.fetcher.fetch(client_id)
            return OAuthClient(
                client_id=document.client_id,
                client_name=document.client_name,
                redirect_uris=document.redirect_uris,
                token_endpoint_auth_method=document.token_endpoint_auth_method,
                grant_types=document.grant_types,
                response_types=document.response_types,
                allowed_scopes=frozenset(document.scope.split()) if document.scope else None,
                scope_policy=self.scopes,
                from_metadata_document=True,
                jwks_uri=document.jwks_uri,
                jwks=document.jwks,
            )
        if len(client_id) > 64:
            return None
        registered = await self.store.registered_client(client_id)
        if registered is None:
            return None
        return self.from_registration(registered)

    def from_registration(self, registered: RegisteredClient) -> OAuthClient:
        metadata = registered.client_metadata
        return OAuthClient(
            client_id=registered.client_id,
            client_name=registered.client_name,
            redirect_uris=tuple(metadata.get("redirect_uris", ())),
            token_endpoint_auth_method=metadata.get("token_endpoint_auth_method", "none"),
            grant_types=tuple(metadata.get("grant_types", ("authorization_code",))),
            response_types=tuple(metadata.get("response_types", ("code",))),
            # The registered ``scope`` does not bound later requests: open registration makes it
            # self-asserted (no protection; consent is), and MCP clients register with the scope of
            # their first challenge, then step up (MCP authorization, scope challenges). Bounding
            # it would narrow every step-up back to the first scope: a 403 loop.
            allowed_scopes=None,
            scope_policy=self.scopes,
            secret_hash=registered.secret_hash,
            jwks_uri=metadata.get("jwks_uri"),
            jwks=metadata.get("jwks"),
        )
