"""Sign-in is throttled per account and per address (OWASP authentication: protect against brute force).

After five failures within 15 minutes for an account or from an address, sign-in answers 429 with
``Retry-After`` (RFC 6585 §4), even for the right password; other accounts from other addresses are
unaffected. Failures are answered the same way for unknown users and wrong passwords.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.oauth import Account, BrowserLikeUser, EmbeddedServer, start_embedded

pytestmark = pytest.mark.usefixtures("no_server_errors")

WRONG = "not-the-password-123"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Its own server: the throttle is server-wide state, and this module locks the owner out."""
    server = start_embedded(tmp_path_factory.mktemp("throttling"))
    yield server
    server.stop_and_check()


@dataclass
class Attempts:
    failures: list[httpx.Response]  # five wrong passwords for the owner, from 127.0.0.1
    sixth: httpx.Response  # the owner, wrong password again
    right_password_elsewhere: httpx.Response  # the owner, right password, from 127.0.0.2
    unknown_user_elsewhere: httpx.Response  # another name, from 127.0.0.3
    unknown_user_same_address: httpx.Response  # another name, from 127.0.0.1


def attempt(embedded: EmbeddedServer, account: Account, password: str, address: str) -> httpx.Response:
    person = BrowserLikeUser(embedded.issuer, account, local_address=address)
    try:
        return person.sign_in(password)
    finally:
        person.close()


@pytest.fixture(scope="module")
def attempts(embedded: EmbeddedServer) -> Attempts:
    owner = embedded.account
    stranger = Account("nobody-here", WRONG)
    failures = [attempt(embedded, owner, WRONG, "127.0.0.1") for _ in range(5)]
    return Attempts(
        failures=failures,
        sixth=attempt(embedded, owner, WRONG, "127.0.0.1"),
        right_password_elsewhere=attempt(embedded, owner, owner.password, "127.0.0.2"),
        unknown_user_elsewhere=attempt(embedded, stranger, WRONG, "127.0.0.3"),
        unknown_user_same_address=attempt(embedded, stranger, WRONG, "127.0.0.1"),
    )


def test_wrong_password_gets_401_and_the_sign_in_form_again(attempts: Attempts) -> None:
    """Each of the first five failures is an ordinary refusal, not yet throttled."""
    assert [response.status_code for response in attempts.failures] == [401] * 5
    assert all("The username or password is wrong." in response.text for response in attempts.failures)


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(attempts: Attempts) -> None:
    """No account enumeration: an unknown name and a wrong password read the same."""
    assert attempts.unknown_user_elsewhere.status_code == 401
    assert "The username or password is wrong." in attempts.unknown_user_elsewhere.text


def test_sixth_attempt_gets_429_with_retry_after(attempts: Attempts) -> None:
    """RFC 6585 §4: 429 Too Many Requests, with Retry-After (at most the 15-minute window)."""
    assert attempts.sixth.status_code == 429
    assert 0 < int(attempts.sixth.headers["retry-after"]) <= 900
    assert "Too many failed attempts" in attempts.sixth.text


def test_locked_account_refuses_the_right_password_from_another_address(attempts: Attempts) -> None:
    """The per-account limit holds whatever the address: a distributed guess is throttled too."""
    assert attempts.right_password_elsewhere.status_code == 429
    assert "location" not in attempts.right_password_elsewhere.headers


def test_locked_address_refuses_other_accounts(attempts: Attempts) -> None:
    """The per-address limit holds whatever the name: spraying one password over many names is throttled."""
    assert attempts.unknown_user_same_address.status_code == 429


def test_throttles_count_an_ipv6_host_by_its_64_block() -> None:
    """One host holds a whole /64: counting each of its addresses apart would make per-address limits moot."""
    from starlette.requests import Request

    from ringfence.authserver.throttle import address_key

    def key(host: str) -> str:
        return address_key(Request({"type": "http", "client": (host, 1), "headers": []}))

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") != key("2001:db8:1:3::1")
    assert key("203.0.113.9") != key("203.0.113.10")
