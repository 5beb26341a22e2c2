"""The authorization server's security events: sign-in failures, token refusals, consents, registrations."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ringfence.audit.records import EventKind
from ringfence.events import ANONYMOUS, Events, SecurityEvent


class AuthEvents:
    """Records one event per call, quietly: these paths answer the browser or client either way."""

    def __init__(self, events: Events | None) -> None:
        self.events = events

    async def __call__(self, request: Request, kind: EventKind, outcome: str, *, subject: str | None = None,
                       client_id: str | None = None, tool: str | None = None, **details: Any) -> None:
        if self.events is None:
            return
        event = SecurityEvent(kind, outcome, principal=subject or ANONYMOUS, tool=tool, client_id=client_id,
                              address=request.client.host if request.client else None, details=details)
        if kind == EventKind.AUTH_FAILURE:  # anyone can cause these: at most so many records per address
            await self.events.record_refusal(event)
        else:
            await self.events.record_quietly(event)
