"""``ringfence keys rotate`` on a running server: new tokens use the new key, old tokens keep working.

RFC 7517 / RFC 8414 ``jwks_uri``: resource servers pick the key by ``kid``; after a rotation the old
public key stays published until every token it signed has expired, so rotation never breaks a
valid token. Private keys are files of mode 0600 in a 0700 folder.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ringfence.authserver.keys import KeyRing, _has_kid
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    jwt_header,
    ringfence_cli,
    start_embedded,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Its own server: rotating the keys changes every later token of the server."""
    server = start_embedded(tmp_path_factory.mktemp("keys"))
    yield server
    server.stop_and_check()


@dataclass
class Rotation:
    before: dict  # a token response from before the rotation
    cli_output: str
    new_kid: str
    after: dict  # a token response from after it
    client: DirectClient


@pytest.fixture(scope="module")
def rotation(embedded: EmbeddedServer) -> Iterator[Rotation]:
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    client = DirectClient.register(embedded.issuer, embedded.mcp_url)
    before = client.tokens(user, scope="contacts:read")
    done = ringfence_cli("keys", "rotate", "--data-dir", str(embedded.data_dir))
    assert done.returncode == 0, done.stderr
    match = re.search(r"new signing key (\S+);", done.stdout)
    assert match is not None, done.stdout
    after = client.tokens(user, scope="contacts:read")
    yield Rotation(before, done.stdout, match.group(1), after, client)
    user.close()


def published_kids(embedded: EmbeddedServer) -> list[str]:
    return [key["kid"] for key in httpx.get(f"{embedded.issuer}/jwks.json").json()["keys"]]


def test_tokens_issued_after_rotation_carry_the_new_kid(rotation: Rotation) -> None:
    """The newest key signs, without restarting the server."""
    assert jwt_header(rotation.after["access_token"])["kid"] == rotation.new_kid
    assert jwt_header(rotation.before["access_token"])["kid"] != rotation.new_kid


def test_old_and_new_keys_are_both_published(embedded: EmbeddedServer, rotation: Rotation) -> None:
    """The retired key stays in jwks.json while tokens it signed may still be valid."""
    kids = published_kids(embedded)
    assert jwt_header(rotation.before["access_token"])["kid"] in kids
    assert rotation.new_kid in kids
    assert len(kids) == 2


def test_token_signed_before_rotation_still_opens_the_mcp_endpoint(embedded: EmbeddedServer,
                                                                   rotation: Rotation) -> None:
    """Rotation never breaks a valid token."""
    response = embedded.process.call_tool("search_contacts", {"query": "x"}, token=rotation.before["access_token"])
    assert response.status_code == 200, response.text


def test_token_signed_after_rotation_opens_the_mcp_endpoint(embedded: EmbeddedServer, rotation: Rotation) -> None:
    """The resource server knows the new key at once."""
    response = embedded.process.call_tool("search_contacts", {"query": "x"}, token=rotation.after["access_token"])
    assert response.status_code == 200, response.text


def test_refresh_after_rotation_is_signed_with_the_new_key(rotation: Rotation) -> None:
    """A grant made before the rotation continues under the new key."""
    refreshed = rotation.client.refresh(rotation.before["refresh_token"])
    assert refreshed.status_code == 200
    assert jwt_header(refreshed.json()["access_token"])["kid"] == rotation.new_kid


def test_key_files_are_private(embedded: EmbeddedServer, rotation: Rotation) -> None:
    """Private key material: mode 0600 files in a 0700 folder, never group- or world-readable."""
    folder = embedded.data_dir / "keys"
    files = sorted(folder.glob("*.jwk.json"))
    assert len(files) == 2
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600, 0o600]


def test_published_keys_hold_no_private_material(embedded: EmbeddedServer, rotation: Rotation) -> None:
    """RFC 7518 §6.2.2: ``d`` is the private key; it never leaves the key files."""
    keys = httpx.get(f"{embedded.issuer}/jwks.json").json()["keys"]
    assert keys and all("d" not in key for key in keys)


def test_the_key_just_rotated_in_signs_even_within_the_same_second(tmp_path: Path) -> None:
    """Two rotations in one second: the newest key must still be the active one. (Regression: keys
    were ordered by whole-second ``created_at``, then by the random part of the kid, so the active
    key could be an older one and ``keys rotate`` announced a kid the server did not sign with.)"""
    ring = KeyRing(tmp_path / "keys", token_lifetime=900)
    ring.load()
    for _ in range(10):
        rotated = ring.rotate()
        assert ring.active.kid == rotated.kid
        assert KeyRing(tmp_path / "keys", token_lifetime=900).active.kid == rotated.kid  # as another process reads it


def test_rotating_in_a_folder_with_no_ringfence_data_refuses_and_writes_no_key(tmp_path) -> None:
    """Run in the wrong folder, ``keys rotate`` says so (exit 2) instead of making a key nobody serves."""
    from tests.support.oauth import ringfence_cli

    done = ringfence_cli("keys", "rotate", "--data-dir", str(tmp_path / "fresh"))
    assert done.returncode == 2
    assert "no ringfence data in" in done.stderr and "--data-dir" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "fresh").exists()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_checks_see_a_rotation_within_a_second_and_look_at_the_folder_at_most_once_a_second(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token checks ask the ring for its published keys on every call; the folder is looked at (one
    ``stat``) at most once a second, and a key rotated in by another process is published within it."""
    import ringfence.authserver.keys as keys_module

    clock = FakeClock()
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, clock=clock)
    first = ring.active.kid
    stats: list[object] = []
    real_stat = keys_module.os.stat
    monkeypatch.setattr(keys_module.os, "stat", lambda path, *a, **k: stats.append(path) or real_stat(path, *a, **k))

    clock.now += 1.0  # a second after the folder was last looked at
    assert _has_kid(ring.keys_for(first), first)
    assert len(stats) == 1
    for _ in range(100):  # within the second: no stat at all
        clock.now += 0.009
        assert _has_kid(ring.keys_for(first), first)
        ring.public_jwks()
    assert len(stats) == 1

    clock.now = 1001.0 + 0.6  # the last look was at 1001.0
    rotated = KeyRing(tmp_path / "keys", token_lifetime=900).rotate()  # as `ringfence keys rotate` does
    stats.clear()  # (that ring's own looks)
    assert rotated.kid not in [key["kid"] for key in ring.public_jwks()["keys"]]  # not looked yet
    assert stats == []
    clock.now += 0.4  # a second since the last look: the folder is looked at, the new key read
    assert [key["kid"] for key in ring.public_jwks()["keys"]] == [first, rotated.kid]
    assert stats  # looked (and read the folder, which stats it again)


def test_a_token_naming_a_key_rotated_in_elsewhere_is_checked_against_it_at_once(tmp_path: Path) -> None:
    """Within the second the folder is not looked at, a token signed with a key this ring has not
    read yet still verifies: the unknown key id makes it read the folder."""
    clock = FakeClock()
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, clock=clock)
    ring.load()
    rotated = KeyRing(tmp_path / "keys", token_lifetime=900).rotate()
    assert _has_kid(ring.keys_for(rotated.kid), rotated.kid)


def test_signing_uses_a_key_rotated_in_elsewhere_at_once(tmp_path: Path) -> None:
    """The active (signing) key is always looked up on the disk: `keys rotate` then a token is signed with it."""
    clock = FakeClock()
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, clock=clock)
    ring.published()
    rotated = KeyRing(tmp_path / "keys", token_lifetime=900).rotate()
    assert ring.active.kid == rotated.kid


def test_a_retired_key_leaves_the_published_set_once_its_tokens_have_expired(tmp_path: Path) -> None:
    """The published set is chosen once per set of keys, and chosen again when a retirement falls due."""
    ring = KeyRing(tmp_path / "keys", token_lifetime=900, leeway=60)
    old = ring.active
    new = ring.rotate()
    due = new.created_at + 960
    kids = [[key.kid for key in ring.published(moment).keys] for moment in (due - 1, due - 0.001, due, due + 1)]
    assert kids == [[old.kid, new.kid], [old.kid, new.kid], [new.kid], [new.kid]]
    assert [key.kid for key in ring.published(due - 1).keys] == [old.kid, new.kid]  # asked about an earlier time
    assert ring.published(due - 1) is ring.published(due - 0.5)  # one set object while the keys are the same
