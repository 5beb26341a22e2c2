"""Which scopes a client gets: requests are narrowed, never refused (the DCR scope trap)."""

from __future__ import annotations

from dataclasses import dataclass

# Asks for a refresh token, not for access to the resource (MCP 2026-07-28 authorization).
OFFLINE_ACCESS = "offline_access"


@dataclass(frozen=True)
class ScopePolicy:
    """``supported``: the declared scopes; ``defaults``: the app's minimal scopes for a request without any."""

    supported: frozenset[str]
    defaults: frozenset[str]

    def grantable(self, requested: str | None, client_allowed: frozenset[str] | None) -> str:
        """The scope to grant: what was asked and may be had; the minimal defaults when that is nothing.

        Real clients register without ``scope``, ask for ``offline_access`` or for nothing at all
        (ChatGPT on reconnect): each gets a working grant, never ``invalid_scope``, and never more
        than the defaults unless they asked for it.
        """
        allowed = self.supported if client_allowed is None else self.supported & client_allowed
        asked = frozenset((requested or "").split()) - {OFFLINE_ACCESS}
        granted = asked & allowed or self.defaults & allowed
        return " ".join(sorted(granted))
