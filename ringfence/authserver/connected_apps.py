"""What the account page shows about each app a person connected, and the notice after disconnecting one.

Two apps may carry the same name (a registered client chooses its own), so each is shown with what
tells it apart: the domain that vouches for it (a metadata document's host) or else "unverified",
the hosts it sends the person back to, and when the person last approved it; its scopes are shown
by their declared descriptions.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from ringfence.authserver.clients import ClientResolver
from ringfence.authserver.models import Consent
from ringfence.authserver.store import AuthStore

DISCONNECTED = "disconnected"  # the account page's query parameters after a disconnection
SIGNATURE = "sig"


@dataclass(frozen=True)
class ScopeText:
    name: str
    description: str


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    client_name: str
    identified_by: str | None  # the host of its metadata document URL; None: a registered (unverified) client
    redirect_hosts: tuple[str, ...]  # where it sends the person back (registered clients; a document's may change)
    approved_on: str
    scopes: tuple[ScopeText, ...]


def describe_scopes(scopes: list[str] | frozenset[str], scope_text: Mapping[str, str]) -> list[ScopeText]:
    """Each scope with the description the app declared for it (its name when it declared none)."""
    return [ScopeText(name, scope_text.get(name, name)) for name in sorted(scopes)]


def _day_and_time(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment.day} {moment:%B %Y at %H:%M} UTC"


async def connected_apps(consents: list[Consent], store: AuthStore, clients: ClientResolver,
                         scope_text: Mapping[str, str]) -> list[ConnectedApp]:
    apps = []
    for consent in consents:
        identified_by, redirect_hosts = None, ()
        if clients.names_document(consent.client_id):
            identified_by = urlsplit(consent.client_id).hostname
        elif (registered := await store.registered_client(consent.client_id)) is not None:
            uris = registered.client_metadata.get("redirect_uris") or []
            redirect_hosts = tuple(dict.fromkeys(urlsplit(uri).netloc for uri in uris if isinstance(uri, str)))
        apps.append(ConnectedApp(consent.client_id, consent.client_name, identified_by, redirect_hosts,
                                 _day_and_time(consent.updated_at),
                                 tuple(describe_scopes(consent.scope.split(), scope_text))))
    return apps


def _signature(session_id: str, client_name: str) -> str:
    return hmac.new(session_id.encode(), f"{DISCONNECTED}\0{client_name}".encode(), hashlib.sha256).hexdigest()


def disconnected_location(session_id: str, client_name: str) -> str:
    """Where to go after disconnecting: the account page, with a notice only this session can show."""
    return "/account?" + urlencode({DISCONNECTED: client_name, SIGNATURE: _signature(session_id, client_name)})


def disconnected_notice(session_id: str, query: Mapping[str, str]) -> str | None:
    """The name of the app just disconnected, when the link was made for this session; else ``None``
    (a crafted link cannot put words on someone's account page)."""
    name, signature = query.get(DISCONNECTED), query.get(SIGNATURE)
    if not name or not signature or not hmac.compare_digest(signature.encode(), _signature(session_id, name).encode()):
        return None
    return name
