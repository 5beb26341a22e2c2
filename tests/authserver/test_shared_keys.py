"""Several instances of the embedded authorization server sign and verify with one key ring.

Two ``ringfence serve`` processes share the data folder (where the ES256 keys are 0600 files) and
a PostgreSQL database, behind one public URL as behind a load balancer. ``ringfence keys rotate``
run once is picked up by both without restart: a token signed after it by one instance opens the
other (RFC 7517 ``kid`` selection), and both publish the same ``jwks.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ringfence.authserver import keys as keys_module
from ringfence.authserver.keys import KeyRing
from tests.support.idp import free_port
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    add_user,
    b64url,
    jwt_header,
    ringfence_cli,
    server_errors,
)
from tests.support.serve import CONTACTS_APP, ServeProcess, start_together, stop_together


@dataclass
class Pair:
    first: ServeProcess
    second: ServeProcess
    data_dir: Path
    database_url: str
    public_host: str
    user_first: BrowserLikeUser  # signs in at the first instance
    user_second: BrowserLikeUser  # signs in at the second

    def jwks(self, server: ServeProcess) -> dict:
        return httpx.get(f"{server.base_url}/jwks.json", headers={"host": self.public_host}, timeout=10).json()

    def call(self, server: ServeProcess, token: str) -> httpx.Response:
        # As a load balancer forwards it: the public Host, whichever instance answers.
        return server.call_tool("search_contacts", {"query": "x"}, token=token, headers={"host": self.public_host})


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two instances started at once on an empty shared data folder and one PostgreSQL database."""
    data = tmp_path_factory.mktemp("shared-keys")
    logs = tmp_path_factory.mktemp("shared-keys-logs")
    account = add_user(data, "pat", "shared-keys-password-1", "--database-url", postgres_url)
    ports = free_port(), free_port()
    public = f"http://127.0.0.1:{ports[0]}"
    common = ("--data-dir", str(data), "--database-url", postgres_url, "--public-url", public,
              "--allowed-host", f"127.0.0.1:{ports[1]}")  # the second answers its own address for readiness
    first, second = (ServeProcess(CONTACTS_APP, *common, port=port) for port in ports)
    start_together(logs, first, second)
    users = BrowserLikeUser(first.base_url, account), BrowserLikeUser(second.base_url, account)
    yield Pair(first, second, data, postgres_url, f"127.0.0.1:{ports[0]}", *users)
    for user in users:
        user.close()
    stop_together(first, second)
    for server in (first, second):
        errors = server_errors(server.logs())
        assert errors == [], "\n".join(errors)


@dataclass
class Rotation:
    kids_before: list[str]
    new_kid: str
    from_first: dict  # token response from the first instance, after the rotation
    from_second: dict  # and from the second


def kids(jwks: dict) -> list[str]:
    return sorted(key["kid"] for key in jwks["keys"])


@pytest.fixture(scope="module")
def rotation(pair: Pair) -> Rotation:
    kids_before = kids(pair.jwks(pair.first))
    done = ringfence_cli("keys", "rotate", "--data-dir", str(pair.data_dir), "--database-url", pair.database_url)
    assert done.returncode == 0, done.stderr
    match = re.search(r"new signing key (\S+);", done.stdout)
    assert match is not None, done.stdout
    resource = f"http://{pair.public_host}/mcp"
    at_first = DirectClient.register(pair.first.base_url, resource)
    at_second = DirectClient.register(pair.second.base_url, resource)
    return Rotation(kids_before, match.group(1), at_first.tokens(pair.user_first, scope="contacts:read"),
                    at_second.tokens(pair.user_second, scope="contacts:read"))


def test_instances_starting_together_on_an_empty_folder_make_one_first_key(pair: Pair) -> None:
    """The first key is created under a lock on the shared folder: one key file, one key published by both."""
    assert len(list((pair.data_dir / "keys").glob("*.jwk.json"))) == 1
    assert len(kids(pair.jwks(pair.first))) == 1
    assert pair.jwks(pair.first) == pair.jwks(pair.second)


def test_both_instances_sign_with_the_key_rotated_in_by_the_cli(rotation: Rotation) -> None:
    """``ringfence keys rotate`` once: every instance sharing the folder signs with the new key, without restart."""
    assert jwt_header(rotation.from_first["access_token"])["kid"] == rotation.new_kid
    assert jwt_header(rotation.from_second["access_token"])["kid"] == rotation.new_kid


def test_token_signed_after_rotation_by_one_instance_opens_the_other(pair: Pair, rotation: Rotation) -> None:
    """A token from the first instance is accepted by the second and vice versa (same issuer, shared keys)."""
    assert pair.call(pair.second, rotation.from_first["access_token"]).status_code == 200
    assert pair.call(pair.first, rotation.from_second["access_token"]).status_code == 200


def test_jwks_of_both_instances_agree_after_rotation(pair: Pair, rotation: Rotation) -> None:
    """Both publish the retired key (its tokens are still valid) and the new one, identically."""
    first, second = pair.jwks(pair.first), pair.jwks(pair.second)
    assert first == second
    assert kids(first) == sorted([*rotation.kids_before, rotation.new_kid])
    assert all("d" not in key for key in first["keys"])  # RFC 7518 §6.2.2: no private part is published


def test_token_with_an_unknown_kid_is_refused_by_both(pair: Pair, rotation: Rotation) -> None:
    """A kid in no key file is refused with 401, whatever re-reading the folder finds (nothing)."""
    _, claims, signature = rotation.from_first["access_token"].split(".")
    bogus = b64url(json.dumps({"alg": "ES256", "kid": "no-such-key", "typ": "at+jwt"}).encode())
    for server in (pair.first, pair.second):
        response = pair.call(server, f"{bogus}.{claims}.{signature}")
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


# The key ring alone: re-reading when the folder's time does not tell --------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rotate_unseen(folder: Path) -> str:
    """Rotate as another instance would, then set the folder's time back: a filesystem that hides the change."""
    times = folder.stat()
    key = KeyRing(folder, token_lifetime=900).rotate()
    os.utime(folder, ns=(times.st_atime_ns, times.st_mtime_ns))
    return key.kid


def test_unknown_kid_makes_the_ring_reread_the_folder_at_most_once_per_interval(tmp_path: Path) -> None:
    """A token naming a key rotated in elsewhere is verified at once; a flood of unknown kids reads the disk once."""
    clock = Clock()
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, clock=clock)
    ring.load()
    first = rotate_unseen(tmp_path / "keys")
    assert first not in kids(ring.public_jwks())  # the change is hidden from the cheap check
    assert ring.knows(first)  # the unknown kid forces one re-read
    second = rotate_unseen(tmp_path / "keys")
    assert not ring.knows(second)  # within the interval: no second read
    clock.now += keys_module.UNKNOWN_KID_SECONDS
    assert ring.knows(second)


def test_ring_rereads_the_folder_periodically_even_when_its_time_does_not_change(tmp_path: Path) -> None:
    """Every REREAD_SECONDS the folder is read again, so the new key also becomes the signing key."""
    clock = Clock()
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, clock=clock)
    ring.load()
    new = rotate_unseen(tmp_path / "keys")
    assert ring.active.kid != new
    clock.now += keys_module.REREAD_SECONDS
    assert ring.active.kid == new
