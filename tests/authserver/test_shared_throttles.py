"""Sign-in and registration throttles hold across instances sharing Redis (``--redis-url``).

Two ``ringfence serve`` processes on one PostgreSQL database and one Redis: failed sign-ins (per
address, and per address and account) and registrations spread over both are counted together
(OWASP authentication: brute-force protection must not multiply with the number of instances), a
successful sign-in gives its attempt back, and when Redis cannot answer, sign-in and registration
are refused with 503 rather than let through.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

import httpx
import pytest
import redis

from ringfence.authserver.throttle import SIGN_IN_PER_ADDRESS
from tests.support.idp import free_port
from tests.support.oauth import (
    LOOPBACK_REDIRECT,
    Account,
    BrowserLikeUser,
    add_user,
    register,
    server_errors,
    start_embedded,
)
from tests.support.redis_dbs import THROTTLES, redis_url
from tests.support.serve import CONTACTS_APP, ServeProcess, start_together, stop_together

# This module's own Redis database: emptied before the servers start.
REDIS = redis_url(THROTTLES)
WRONG = "not-the-password-123"


@dataclass
class Pair:
    first: ServeProcess
    second: ServeProcess
    pat: Account
    sam: Account

    def alternating(self) -> Iterator[ServeProcess]:
        return cycle((self.first, self.second))


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    client.close()
    data = tmp_path_factory.mktemp("shared-throttles")
    pat = add_user(data, "pat", "pat-password-123", "--database-url", postgres_url)
    sam = add_user(data, "sam", "sam-password-123", "--database-url", postgres_url)
    args = ("--data-dir", str(data), "--database-url", postgres_url, "--redis-url", REDIS)
    first, second = ServeProcess(CONTACTS_APP, *args), ServeProcess(CONTACTS_APP, *args)
    start_together(data, first, second)
    yield Pair(first, second, pat, sam)
    stop_together(first, second)
    for server in (first, second):
        errors = server_errors(server.logs())
        assert errors == [], "\n".join(errors)


def sign_in(server: ServeProcess, account: Account, password: str, address: str) -> httpx.Response:
    person = BrowserLikeUser(server.base_url, account, local_address=address)
    try:
        return person.sign_in(password)
    finally:
        person.close()


def test_failed_sign_ins_spread_over_two_instances_are_throttled_at_the_combined_limit(pair: Pair) -> None:
    """Five failures for one account from one address, alternating instances: the sixth attempt from that
    address is refused at either (429 with Retry-After, RFC 6585 §4); the account itself is not locked:
    its right password from another address signs in."""
    servers = pair.alternating()
    failures = [sign_in(next(servers), pair.pat, WRONG, "127.0.0.1").status_code for _ in range(5)]
    assert failures == [401] * 5
    for server in (pair.first, pair.second):
        sixth = sign_in(server, pair.pat, WRONG, "127.0.0.1")
        assert sixth.status_code == 429
        assert 0 < int(sixth.headers["retry-after"]) <= 900
    assert sign_in(pair.second, pair.pat, pair.pat.password, "127.0.0.2").status_code == 303


def test_failed_sign_ins_from_one_address_over_two_instances_are_throttled_together(pair: Pair) -> None:
    """Password spraying: twenty unknown names from one address over both instances, then 429 for any name."""
    servers = pair.alternating()
    names = [Account(f"nobody-{n}", WRONG) for n in range(SIGN_IN_PER_ADDRESS.limit)]
    assert [sign_in(next(servers), name, WRONG, "127.0.0.3").status_code for name in names] == [401] * len(names)
    assert sign_in(pair.second, Account("nobody-else", WRONG), WRONG, "127.0.0.3").status_code == 429
    assert sign_in(pair.first, pair.sam, pair.sam.password, "127.0.0.3").status_code == 429


def test_successful_sign_ins_do_not_use_up_the_shared_budget(pair: Pair) -> None:
    """Only failures count: eight correct sign-ins over both instances from one address all succeed."""
    servers = pair.alternating()
    assert [sign_in(next(servers), pair.sam, pair.sam.password, "127.0.0.4").status_code
            for _ in range(8)] == [303] * 8  # fmt: skip


def test_registrations_spread_over_two_instances_are_limited_at_the_combined_allowance(pair: Pair) -> None:
    """RFC 7591 open registration, 30 an hour per address: the 31st is refused whichever instance gets it."""
    servers = pair.alternating()
    answers = [register(next(servers).base_url, redirect_uris=[LOOPBACK_REDIRECT], local_address="127.0.0.5")
               for _ in range(30)]  # fmt: skip
    assert [answer.status_code for answer in answers] == [201] * 30
    for server in (pair.first, pair.second):
        refused = register(server.base_url, redirect_uris=[LOOPBACK_REDIRECT], local_address="127.0.0.5")
        assert refused.status_code == 429
        assert refused.json()["error"] == "slow_down"
        assert int(refused.headers["retry-after"]) > 0


# Redis unreachable: fail closed --------------------------------------------------------------------


@pytest.fixture(scope="module")
def without_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data: Path = tmp_path_factory.mktemp("no-redis")
    server = start_embedded(data, "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    yield server.process
    server.process.stop()


def test_sign_in_is_refused_with_503_when_redis_cannot_answer(without_redis: ServeProcess) -> None:
    """No password is checked unthrottled: the page says to try again later; nothing signs in."""
    answer = sign_in(without_redis, Account("owner", "whatever-it-is"), "whatever-it-is", "127.0.0.6")
    assert answer.status_code == 503
    assert "Try again later" in answer.text
    assert answer.headers["retry-after"] == "1"
    assert "location" not in answer.headers
    assert "Traceback" not in answer.text and "redis" not in answer.text.lower()


def test_registration_is_refused_with_503_when_redis_cannot_answer(without_redis: ServeProcess) -> None:
    """RFC 6749 §5.2-style JSON error ``temporarily_unavailable``, never a registered client."""
    answer = register(without_redis.base_url, redirect_uris=[LOOPBACK_REDIRECT], local_address="127.0.0.6")
    assert answer.status_code == 503
    assert answer.json()["error"] == "temporarily_unavailable"
    assert "client_id" not in answer.json()
