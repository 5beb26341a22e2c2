"""Sign-in throttles the guesser, never the account (OWASP authentication: protect against brute
force, without letting anyone lock a user out).

Failures count per source address and account (five within 15 minutes, then 429 with
``Retry-After``, RFC 6585 §4) and per source address over all accounts (twenty). The owner signing
in from another address is never affected by failures in their name elsewhere, and concurrent
correct sign-ins never 429 one another. Failures are answered the same way for unknown users and
wrong passwords.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from ringfence.authserver.throttle import SIGN_IN_PER_ADDRESS, SIGN_IN_PER_ADDRESS_AND_ACCOUNT
from tests.support.oauth import Account, BrowserLikeUser, EmbeddedServer, start_embedded

pytestmark = pytest.mark.usefixtures("no_server_errors")

WRONG = "not-the-password-123"
PER_ACCOUNT = SIGN_IN_PER_ADDRESS_AND_ACCOUNT.limit  # 5
PER_ADDRESS = SIGN_IN_PER_ADDRESS.limit  # 20


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Its own server: the throttle is server-wide state, and this module throttles many addresses."""
    server = start_embedded(tmp_path_factory.mktemp("throttling"))
    yield server
    server.stop_and_check()


@dataclass
class Attempts:
    failures: list[httpx.Response]  # five wrong passwords for the owner, from 127.0.0.1
    sixth: httpx.Response  # the owner, wrong password again, from 127.0.0.1
    right_password_elsewhere: httpx.Response  # the owner, right password, from 127.0.0.2
    unknown_user_elsewhere: httpx.Response  # another name, from 127.0.0.3
    other_name_same_address: httpx.Response  # another name, from 127.0.0.1


def attempt(embedded: EmbeddedServer, account: Account, password: str, address: str) -> httpx.Response:
    person = BrowserLikeUser(embedded.issuer, account, local_address=address)
    try:
        return person.sign_in(password)
    finally:
        person.close()


def at_once(embedded: EmbeddedServer, account: Account, password: str, address: str, count: int) -> list[int]:
    """``count`` sign-ins sent together (their password checks overlap); the statuses, sorted."""
    with ThreadPoolExecutor(count) as pool:
        answers = pool.map(lambda _: attempt(embedded, account, password, address), range(count))
        return sorted(answer.status_code for answer in answers)


@pytest.fixture(scope="module")
def attempts(embedded: EmbeddedServer) -> Attempts:
    owner = embedded.account
    stranger = Account("nobody-here", WRONG)
    failures = [attempt(embedded, owner, WRONG, "127.0.0.1") for _ in range(PER_ACCOUNT)]
    return Attempts(
        failures=failures,
        sixth=attempt(embedded, owner, WRONG, "127.0.0.1"),
        right_password_elsewhere=attempt(embedded, owner, owner.password, "127.0.0.2"),
        unknown_user_elsewhere=attempt(embedded, stranger, WRONG, "127.0.0.3"),
        other_name_same_address=attempt(embedded, stranger, WRONG, "127.0.0.1"),
    )


def test_wrong_password_gets_401_and_the_sign_in_form_again(attempts: Attempts) -> None:
    """Each of the first five failures is an ordinary refusal, not yet throttled."""
    assert [response.status_code for response in attempts.failures] == [401] * PER_ACCOUNT
    assert all("The username or password is wrong." in response.text for response in attempts.failures)


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(attempts: Attempts) -> None:
    """No account enumeration: an unknown name and a wrong password read the same."""
    assert attempts.unknown_user_elsewhere.status_code == 401
    assert "The username or password is wrong." in attempts.unknown_user_elsewhere.text


def test_sixth_failure_at_one_account_from_one_address_gets_429_with_retry_after(attempts: Attempts) -> None:
    """RFC 6585 §4: 429 Too Many Requests, with Retry-After (at most the 15-minute window)."""
    assert attempts.sixth.status_code == 429
    assert 0 < int(attempts.sixth.headers["retry-after"]) <= 900
    assert "Too many failed attempts" in attempts.sixth.text


def test_failures_in_a_users_name_elsewhere_never_lock_the_user_out(attempts: Attempts) -> None:
    """Throttle the guesser, not the account: the owner's right password from another address signs in
    although the guesser's address is throttled at their account."""
    assert attempts.right_password_elsewhere.status_code == 303


def test_the_guessers_address_may_still_fail_at_other_names_up_to_its_own_budget(attempts: Attempts) -> None:
    """One account's limit at an address does not throttle other names there (people behind one NAT)."""
    assert attempts.other_name_same_address.status_code == 401


def test_spraying_many_names_from_one_address_is_throttled_for_every_name(embedded: EmbeddedServer) -> None:
    """Password spraying: twenty failures over twenty names from one address, then 429 for any name,
    the right password included; the same owner from another address is unaffected."""
    names = [Account(f"spray-{n}", WRONG) for n in range(PER_ADDRESS)]
    assert [attempt(embedded, name, WRONG, "127.0.0.4").status_code for name in names] == [401] * PER_ADDRESS
    assert attempt(embedded, Account("spray-next", WRONG), WRONG, "127.0.0.4").status_code == 429
    owner = embedded.account
    assert attempt(embedded, owner, owner.password, "127.0.0.4").status_code == 429
    assert attempt(embedded, owner, owner.password, "127.0.0.5").status_code == 303


def test_concurrent_correct_sign_ins_to_one_account_are_never_429(embedded: EmbeddedServer) -> None:
    """Ten sign-ins with the right password at once, from one address (more than the five failures
    allowed): each spends an attempt before its password check and gives it back after, and an
    attempt that finds the budget taken by checks still in flight waits for them: all ten sign in."""
    owner = embedded.account
    assert at_once(embedded, owner, owner.password, "127.0.0.6", 10) == [303] * 10


def test_concurrent_wrong_guesses_still_end_at_the_limit(embedded: EmbeddedServer) -> None:
    """The wait does not let parallel guesses past the limit: of ten wrong passwords at once, five are
    checked (401) and five refused (429); the right password from that address is then refused too."""
    owner = embedded.account
    assert at_once(embedded, owner, WRONG, "127.0.0.7", 10) == [401] * PER_ACCOUNT + [429] * 5
    assert attempt(embedded, owner, owner.password, "127.0.0.7").status_code == 429


def test_throttles_count_an_ipv6_host_by_its_64_block() -> None:
    """One host holds a whole /64: counting each of its addresses apart would make per-address limits moot."""
    from starlette.requests import Request

    from ringfence.authserver.throttle import address_key

    def key(host: str) -> str:
        return address_key(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") != key("2001:db8:1:3::1")
    assert key("203.0.113.9") != key("203.0.113.10")
