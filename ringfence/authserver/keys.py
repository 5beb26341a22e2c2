"""The authorization server's ES256 signing keys: files of mode 0600 in the data folder.

The newest key signs. After a rotation the previous public keys stay published until every
token they signed has expired, so rotation never breaks a valid token.

Several instances share the keys by sharing the data folder (a volume or secret mount), as they
already must for the other per-deployment keys in it (:mod:`ringfence.store.secrets`). That was
chosen over keys in the database because it is both safer and simpler for operators: private keys
never enter the database, so its dumps, replicas and backups hold nothing that can sign a token,
and there is no second key to manage to encrypt them; rotation stays one command that writes one
file. Every instance notices a new file within :data:`STAT_SECONDS` (the folder's modification
time changes; token checks look at it at most that often, not once each), and also re-reads the
folder every :data:`REREAD_SECONDS` in case a network filesystem hides that, and when a token
names a key it does not know (at most once every :data:`UNKNOWN_KID_SECONDS`, so forged key ids
cannot make it read the disk in a loop). Signing always looks first: a token is signed with the
newest key on the disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey, KeySet

KEY_SUFFIX = ".jwk.json"
LOCK_FILE = ".lock"
REREAD_SECONDS = 60.0
STAT_SECONDS = 1.0  # how stale the published keys may be: a rotation is seen within this
UNKNOWN_KID_SECONDS = 5.0


@dataclass(frozen=True)
class SigningKey:
    key: ECKey
    created_at: float  # seconds, sub-second precision: orders two keys made within one second

    @property
    def kid(self) -> str:
        return self.key.kid  # type: ignore[return-value]


class KeyRing:
    """Loads the key files, creates the first key, rotates, and answers what is published."""

    def __init__(self, folder: Path, *, token_lifetime: int, leeway: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self.retire_after = token_lifetime + leeway
        self._clock = clock
        self._keys: list[SigningKey] = []
        self._seen_mtime: float | None = None
        self._read_at = float("-inf")
        self._stat_at = float("-inf")  # when the folder was last looked at
        self._unknown_kid_read_at = float("-inf")
        self._published = KeySet([])
        # ``_published`` holds for ``_keys`` being ``_published_from``, from ``_published_since``
        # until ``_published_until`` (the next retirement of a key).
        self._published_from: list[SigningKey] | None = None
        self._published_since = self._published_until = 0.0

    def load(self, *, force: bool = False) -> None:
        """Read the folder (creating it and a first key if needed); one ``stat`` when nothing changed."""
        # The time is taken before the files are read: a key written meanwhile is read next time.
        self._stat_at = self._clock()
        try:
            mtime = os.stat(self.folder).st_mtime
        except FileNotFoundError:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            mtime = os.stat(self.folder).st_mtime
        stale = self._clock() - self._read_at >= REREAD_SECONDS
        if not force and not stale and mtime == self._seen_mtime and self._keys:
            return
        keys = self._read_all()
        if not keys:
            with self._locked():  # instances starting together on an empty folder make one first key
                if not self._read_all():
                    self._create([])
                mtime = self.folder.stat().st_mtime  # every writer holds the lock: nothing changes now
                keys = self._read_all()
        self._keys = sorted(keys, key=lambda k: (k.created_at, k.kid))
        self._seen_mtime, self._read_at = mtime, self._clock()

    def rotate(self) -> SigningKey:
        """Add a new signing key; the old ones stay published until their tokens have expired."""
        with self._locked():
            key = self._create(self._read_all())
        self.load(force=True)
        return key

    def knows(self, kid: str | None) -> bool:
        """Whether ``kid`` is published; an unknown one makes the ring re-read the folder (rate-limited)."""
        return kid is None or _has_kid(self.keys_for(kid), kid)

    def keys_for(self, kid: str | None) -> KeySet:
        """The published keys, re-read first when ``kid`` is not among them (at most once every
        :data:`UNKNOWN_KID_SECONDS`): a key rotated in by another instance is read now."""
        published = self.published()
        if kid is None or _has_kid(published, kid) or self._clock() - self._unknown_kid_read_at < UNKNOWN_KID_SECONDS:
            return published
        self._unknown_kid_read_at = self._clock()
        self.load(force=True)
        return self.published()

    @property
    def active(self) -> SigningKey:
        self.load()
        return self._keys[-1]

    def published(self, now: float | None = None) -> KeySet:
        """Public keys tokens may still be signed with: the active key and recently retired ones.
        The folder is looked at if it was not within the last :data:`STAT_SECONDS`."""
        if not self._keys or self._clock() - self._stat_at >= STAT_SECONDS:
            self.load()
        now = time.time() if now is None else now
        keys = self._keys
        if keys is self._published_from and self._published_since <= now < self._published_until:
            return self._published  # the same keys, and no retirement due since they were chosen
        keep = [
            key.key for key, successor in zip(keys, [*keys[1:], None], strict=True)
            if successor is None or now < successor.created_at + self.retire_after
        ]
        # The same set object while its keys are the same: token caches check it by identity.
        if [id(key) for key in keep] != [id(key) for key in self._published.keys]:
            self._published = KeySet(keep)
        retirements = [successor.created_at + self.retire_after for successor in keys[1:]]
        self._published_from, self._published_since = keys, now
        self._published_until = min([moment for moment in retirements if moment > now], default=float("inf"))
        return self._published

    def public_jwks(self) -> dict:
        return self.published().as_dict(private=False)

    def _read_all(self) -> list[SigningKey]:
        return [_read(path) for path in sorted(self.folder.glob(f"*{KEY_SUFFIX}"))]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the folder, across processes (and instances sharing the folder)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _create(self, existing: list[SigningKey]) -> SigningKey:
        # Strictly after every existing key, so that the new key is the active one (``load`` orders
        # by ``created_at``) even when rotated twice within a second or after a clock step back.
        created = max([time.time(), *(key.created_at + 1e-3 for key in existing)])
        kid = f"{int(created)}-{secrets.token_hex(4)}"
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, auto_kid=False)
        path = self.folder / f"{kid}{KEY_SUFFIX}"
        temporary = self.folder / f".{kid}.tmp"
        document = json.dumps({"created_at": created, "jwk": key.as_dict(private=True)})
        # Private key material: created with mode 0600 from the first byte, never world-readable;
        # written aside and renamed into place, so another instance never reads half a key.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(document)
            file.flush()
            os.fsync(file.fileno())
        os.rename(temporary, path)
        return SigningKey(key, created)


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _read(path: Path) -> SigningKey:
    document = json.loads(path.read_text())
    return SigningKey(ECKey.import_key(document["jwk"]), float(document["created_at"]))
