"""Which budgets one tool call spends: the default rate per dimension, and the keys for a call.

A call is allowed only when every dimension that applies allows it, and then it is counted in
all of them (``RateLimiter.hit_all``); a refused call is counted in none, so a caller held back
by one dimension does not drain the others. Unauthenticated traffic (calls without a token, and
failed authentications) spends only budgets of its own, never one a signed-in call spends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ringfence.ops.ratelimit import Rate

MINUTE = 60.0
PER_PRINCIPAL = Rate(60, MINUTE)
PER_ADDRESS = Rate(600, MINUTE)
PER_CLIENT = Rate(3_000, MINUTE)
PER_TOOL = Rate(3_000, MINUTE)
PER_ANONYMOUS_ADDRESS = Rate(600, MINUTE)


@dataclass(frozen=True)
class RateLimits:
    """Tool-call rates per dimension; ``None`` turns a dimension off.

    The defaults, and why:

    - ``per_principal`` 60/min (bursts of 60): one person or agent. A conversation makes a few
      calls per turn; a sustained call per second is already an agent in a loop.
    - ``per_address`` 600/min: signed-in calls from one address, about ten busy principals behind
      one NAT. IPv6 callers are counted per /64, the block one host gets. ChatGPT's calls all come
      from OpenAI's addresses: raise it, or turn it off, for an app many ChatGPT users share.
    - ``per_anonymous_address`` 600/min: what arrives from one address without a valid token, in
      a budget of its own: calls to public tools, and every failed authentication (a bad token,
      or none for a protected tool), which past it get 429 instead of 401. Raise it with
      ``per_address`` for an app whose anonymous users arrive through ChatGPT.
    - ``per_client`` 3,000/min: every user of one OAuth client together (ChatGPT is one client).
      Clients are cheap to register, so one must not become a flood channel.
    - ``per_tool`` 3,000/min: every caller of one tool together, a backstop for what the tool
      talks to. A shared ceiling lets enough callers crowd others out, so keep it generous and set
      tighter limits for expensive tools in ``tools`` (tool name to rate). Anonymous calls have the
      same ceiling per tool, apart: they never crowd out signed-in callers.
    """

    per_principal: Rate | None = PER_PRINCIPAL
    per_address: Rate | None = PER_ADDRESS
    per_client: Rate | None = PER_CLIENT
    per_tool: Rate | None = PER_TOOL
    tools: Mapping[str, Rate] = field(default_factory=dict)
    per_anonymous_address: Rate | None = PER_ANONYMOUS_ADDRESS


DEFAULT_LIMITS = RateLimits()


def keys_for(
    principal: str | None,
    client_id: str | None,
    address: str | None,
    tool: str,
    limits: RateLimits | None = None,
) -> list[tuple[str, Rate]]:
    """The (key, rate) budgets one call to ``tool`` spends, for ``RateLimiter.hit_all``.

    ``principal`` is the verified subject (``None`` when anonymous: then only anonymous budgets),
    ``address`` the client address the server trusts; calls whose address is unknown share one budget.
    """
    limits = limits or DEFAULT_LIMITS
    tool_rate = limits.tools.get(tool, limits.per_tool)
    if principal is None:
        keys = unauthenticated_keys(address, limits)
        if tool_rate:
            keys.append((f"anonymous-tool:{tool}", tool_rate))
        return keys
    keys: list[tuple[str, Rate]] = []
    if limits.per_principal:
        keys.append((f"principal:{principal}", limits.per_principal))
    if client_id is not None and limits.per_client:
        keys.append((f"client:{client_id}", limits.per_client))
    if limits.per_address:
        keys.append((f"address:{address_bucket(address)}", limits.per_address))
    if tool_rate:
        keys.append((f"tool:{tool}", tool_rate))
    return keys


def unauthenticated_keys(address: str | None, limits: RateLimits | None = None) -> list[tuple[str, Rate]]:
    """The budget of what arrives from ``address`` without a valid token: anonymous calls and
    failed authentications."""
    rate = (limits or DEFAULT_LIMITS).per_anonymous_address
    return [(f"anonymous:{address_bucket(address)}", rate)] if rate else []


def address_bucket(address: str | None) -> str:
    """The address as counted: IPv4 as is, IPv6 by its /64 (one host can hold all of it)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
