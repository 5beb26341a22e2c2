"""Client addresses behind reverse proxies (``--trusted-proxy``, ops/proxies.py).

A forwarding header is read only when the TCP peer is a listed proxy, and then from the right: the
client is the rightmost hop that is not itself a trusted proxy (RFC 7239 §7.4; what a client writes
further left is never believed). Without a listed proxy, forwarding headers are ignored. Every
per-address budget (rate limits, sign-in throttles) then counts the real client, so clients behind
one proxy no longer share one budget. Observed on the wire through those budgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ringfence.config import ConfigError, Settings
from ringfence.ops.proxies import TrustedProxies
from tests.conftest import external_idp_args
from tests.support.budgets import ANONYMOUS_PER_ADDRESS, budgets_app, call_from
from tests.support.idp import TestIdentityProvider
from tests.support.oauth import Account, BrowserLikeUser, EmbeddedServer, server_errors, start_embedded
from tests.support.serve import ServeProcess, start_together, stop_together

WRONG = "not-the-password-123"


@dataclass
class Servers:
    by_xff: ServeProcess  # trusts 127.0.0.1 and 10.0.0.0/8, reads X-Forwarded-For
    by_forwarded: ServeProcess  # trusts 127.0.0.1, reads RFC 7239 Forwarded
    direct: ServeProcess  # no trusted proxy (the default)


@pytest.fixture(scope="module")
def servers(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("proxies")
    app = budgets_app(tmp)
    args, env = external_idp_args(idp, introspection=False)

    def server(name: str, *extra: str) -> ServeProcess:
        return ServeProcess(app, *args, "--data-dir", str(tmp / name), *extra, env=env)

    started = Servers(
        by_xff=server("xff", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8"),
        by_forwarded=server("forwarded", "--trusted-proxy", "127.0.0.1", "--trusted-proxy-header", "forwarded"),
        direct=server("direct"),
    )
    start_together(tmp, started.by_xff, started.by_forwarded, started.direct)
    yield started
    stop_together(started.by_xff, started.by_forwarded, started.direct)
    for process in (started.by_xff, started.by_forwarded, started.direct):
        assert server_errors(process.logs()) == []


def statuses(server: ServeProcess, peer: str, forwarded: list[dict[str, str]]) -> list[int]:
    """One anonymous ``hello`` per header set, from ``peer``."""
    return [call_from(server, peer, "hello", headers=headers).status_code for headers in forwarded]


ALLOWED_THEN_REFUSED = [200] * ANONYMOUS_PER_ADDRESS + [429]


def test_clients_behind_a_trusted_proxy_get_budgets_of_their_own(servers: Servers) -> None:
    """The proxy at 127.0.0.1 forwards two clients: one spends its anonymous budget, the other is unaffected."""
    first = [{"x-forwarded-for": "203.0.113.1"}] * (ANONYMOUS_PER_ADDRESS + 1)
    assert statuses(servers.by_xff, "127.0.0.1", first) == ALLOWED_THEN_REFUSED
    refused = call_from(servers.by_xff, "127.0.0.1", "hello", headers={"x-forwarded-for": "203.0.113.1"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert statuses(servers.by_xff, "127.0.0.1", [{"x-forwarded-for": "203.0.113.2"}]) == [200]


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(servers: Servers) -> None:
    """127.0.0.2 is no listed proxy: naming a new client in each request does not give it new budgets."""
    spoofed = [{"x-forwarded-for": f"198.51.100.{n}"} for n in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses(servers.by_xff, "127.0.0.2", spoofed) == ALLOWED_THEN_REFUSED


def test_without_a_trusted_proxy_forwarding_headers_are_ignored_even_from_loopback(servers: Servers) -> None:
    """The default trusts no proxy: the peer is the client, whatever it forwards."""
    spoofed = [{"x-forwarded-for": f"198.51.100.{n}", "forwarded": f"for=198.51.100.{n}"}
               for n in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses(servers.direct, "127.0.0.3", spoofed) == ALLOWED_THEN_REFUSED


def test_the_rightmost_untrusted_hop_is_the_client_and_what_it_writes_left_is_not_read(servers: Servers) -> None:
    """A client that sends its own X-Forwarded-For gets it appended to by the proxy: only the hop the
    proxy wrote (the rightmost) counts, so inventing hops on the left never buys a new budget."""
    invented = [{"x-forwarded-for": f"192.0.2.{n}, 203.0.113.3"} for n in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses(servers.by_xff, "127.0.0.1", invented) == ALLOWED_THEN_REFUSED


def test_a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop(servers: Servers) -> None:
    """10.0.0.0/8 is trusted too: "client, 10.1.2.3" through 127.0.0.1 is the client, in several fields too
    (RFC 9110 §5.3: repeated fields are one list)."""
    chain = [{"x-forwarded-for": "203.0.113.4, 10.1.2.3"}] * ANONYMOUS_PER_ADDRESS
    assert statuses(servers.by_xff, "127.0.0.1", chain) == [200] * ANONYMOUS_PER_ADDRESS
    split = call_from(servers.by_xff, "127.0.0.1", "hello",
                      headers=[("x-forwarded-for", "203.0.113.4"), ("x-forwarded-for", "10.9.9.9")])
    assert split.status_code == 429  # the same client, its budget spent


def test_a_hop_the_proxy_could_not_name_counts_under_the_proxy(servers: Servers) -> None:
    """``unknown`` or garbage where an address should be: never a fresh budget per made-up value."""
    garbage = [{"x-forwarded-for": value} for value in ("unknown", "not-an-address", "", "300.1.1.1")]
    assert statuses(servers.by_forwarded, "127.0.0.1", [{"forwarded": "for=203.0.113.9"}]) == [200]
    # by_xff: these four all fall back to the proxy's own address, 127.0.0.1, with one budget
    assert statuses(servers.by_xff, "127.0.0.1", garbage) == ALLOWED_THEN_REFUSED


def test_rfc_7239_forwarded_is_read_when_configured_and_x_forwarded_for_then_ignored(servers: Servers) -> None:
    """``for=`` with a quoted IPv6 address and port names the client; an IPv6 client counts by its /64."""
    ipv6 = [{"forwarded": f'for="[2001:db8:cafe::{n}]:4711";proto=https'} for n in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses(servers.by_forwarded, "127.0.0.1", ipv6) == ALLOWED_THEN_REFUSED
    assert statuses(servers.by_forwarded, "127.0.0.1", [{"forwarded": "for=203.0.113.10"}]) == [200]
    # X-Forwarded-For is not the configured header: these all count under the proxy itself
    other = [{"x-forwarded-for": f"203.0.113.{20 + n}"} for n in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses(servers.by_forwarded, "127.0.0.1", other) == ALLOWED_THEN_REFUSED


# Sign-in behind a proxy: throttle the guesser, not every user ------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("proxied-sign-in"), "--trusted-proxy", "127.0.0.1")
    yield server
    server.stop_and_check()


def sign_in_via_proxy(embedded: EmbeddedServer, account: Account, password: str, client: str) -> httpx.Response:
    person = BrowserLikeUser(embedded.issuer, account)
    person.http.headers["x-forwarded-for"] = client
    try:
        return person.sign_in(password)
    finally:
        person.close()


def test_failed_sign_ins_behind_the_proxy_do_not_lock_out_users_elsewhere(embedded: EmbeddedServer) -> None:
    """The attack pass: five failed sign-ins through the proxy locked out every user. Now they throttle
    only their own client; the owner and other users through the same proxy sign in."""
    owner = embedded.account
    names = [Account(f"made-up-{n}", WRONG) for n in range(5)]
    assert [sign_in_via_proxy(embedded, name, WRONG, "203.0.113.50").status_code for name in names] == [401] * 5
    guesses = [sign_in_via_proxy(embedded, owner, WRONG, "203.0.113.50").status_code for _ in range(6)]
    assert guesses == [401] * 5 + [429]
    assert sign_in_via_proxy(embedded, owner, owner.password, "203.0.113.51").status_code == 303


# The setting itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "10.0.0.1/8", "proxy.internal", ""])
def test_a_trusted_proxy_that_is_no_address_or_trusts_everyone_is_refused(value: str) -> None:
    """Trusting every address would let any client name its own address; host bits after the prefix
    are a typo. Refused at start-up in one line (ConfigError)."""
    with pytest.raises(ConfigError, match="trusted proxy"):
        Settings.load(trusted_proxies=(value,))


def test_forwarding_header_must_be_one_of_the_two() -> None:
    with pytest.raises(ConfigError, match="trusted_proxy_header"):
        Settings.load(trusted_proxy_header="x-real-ip")


@pytest.mark.parametrize(("peer", "headers", "client"), [
    ("192.0.2.1", [(b"x-forwarded-for", b"203.0.113.1")], "192.0.2.1"),  # untrusted peer
    ("10.0.0.1", [(b"x-forwarded-for", b"203.0.113.1:5555")], "203.0.113.1"),  # v4:port
    ("10.0.0.1", [(b"x-forwarded-for", b"[2001:db8::1]:443")], "2001:db8::1"),
    ("10.0.0.1", [(b"x-forwarded-for", b"::ffff:203.0.113.7")], "203.0.113.7"),  # IPv4-mapped
    ("10.0.0.1", [(b"x-forwarded-for", b"203.0.113.1, 10.0.0.2, 10.0.0.3")], "203.0.113.1"),
    ("10.0.0.1", [(b"x-forwarded-for", b"10.0.0.2, 10.0.0.3")], "10.0.0.2"),  # every hop trusted
    ("10.0.0.1", [(b"x-forwarded-for", b"203.0.113.1, unknown")], "10.0.0.1"),
    ("10.0.0.1", [], "10.0.0.1"),
    ("::ffff:10.0.0.1", [(b"x-forwarded-for", b"203.0.113.1")], "203.0.113.1"),  # a mapped peer
])
def test_client_address_from_x_forwarded_for(peer: str, headers: list[tuple[bytes, bytes]], client: str) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client(peer, {"type": "http", "headers": headers}) == client


@pytest.mark.parametrize(("value", "client"), [
    (b'for=203.0.113.1;proto=https, for="10.0.0.2"', "203.0.113.1"),
    (b'For="[2001:db8::1]:4711"', "2001:db8::1"),
    (b"for=_hidden", "10.0.0.1"),  # an obfuscated node (RFC 7239 §6.3): the proxy's own address
    (b"proto=https", "10.0.0.1"),
    (b'for="203.0.113.1, 198.51.100.1"', "10.0.0.1"),  # a comma inside quotes: mangled, never believed
])
def test_client_address_from_forwarded(value: bytes, client: str) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"], "forwarded")
    assert proxies.client("10.0.0.1", {"type": "http", "headers": [(b"forwarded", value)]}) == client
