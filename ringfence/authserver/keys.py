"""The authorization server's ES256 signing keys: files of mode 0600 in the data folder.

The newest key signs. After a rotation the previous public keys stay published until every
token they signed has expired, so rotation never breaks a valid token.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey, KeySet

KEY_SUFFIX = ".jwk.json"


@dataclass(frozen=True)
class SigningKey:
    key: ECKey
    created_at: float  # seconds, sub-second precision: orders two keys made within one second

    @property
    def kid(self) -> str:
        return self.key.kid  # type: ignore[return-value]


class KeyRing:
    """Loads the key files, creates the first key, rotates, and answers what is published."""

    def __init__(self, folder: Path, *, token_lifetime: int, leeway: int = 60) -> None:
        self.folder = folder
        self.retire_after = token_lifetime + leeway
        self._keys: list[SigningKey] = []
        self._seen_mtime: float | None = None

    def load(self) -> None:
        """Read the folder (creating it and a first key if needed); cheap when nothing changed."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        mtime = self.folder.stat().st_mtime
        if mtime == self._seen_mtime and self._keys:
            return
        keys = [_read(path) for path in sorted(self.folder.glob(f"*{KEY_SUFFIX}"))]
        if not keys:
            keys = [self._create()]
        self._keys = sorted(keys, key=lambda k: (k.created_at, k.kid))
        self._seen_mtime = self.folder.stat().st_mtime

    def rotate(self) -> SigningKey:
        """Add a new signing key; the old ones stay published until their tokens have expired."""
        self.load()
        key = self._create()
        self._seen_mtime = None
        self.load()
        return key

    @property
    def active(self) -> SigningKey:
        self.load()
        return self._keys[-1]

    def published(self, now: float | None = None) -> KeySet:
        """Public keys tokens may still be signed with: the active key and recently retired ones."""
        self.load()
        now = time.time() if now is None else now
        keep = [
            key for key, successor in zip(self._keys, [*self._keys[1:], None], strict=True)
            if successor is None or now < successor.created_at + self.retire_after
        ]
        return KeySet([key.key for key in keep])

    def public_jwks(self) -> dict:
        return self.published().as_dict(private=False)

    def _create(self) -> SigningKey:
        # Strictly after every existing key, so that the new key is the active one (``load`` orders
        # by ``created_at``) even when rotated twice within a second or after a clock step back.
        created = max([time.time(), *(key.created_at + 1e-3 for key in self._keys)])
        kid = f"{int(created)}-{secrets.token_hex(4)}"
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, auto_kid=False)
        path = self.folder / f"{kid}{KEY_SUFFIX}"
        document = json.dumps({"created_at": created, "jwk": key.as_dict(private=True)})
        # Private key material: created with mode 0600 from the first byte, never world-readable.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(document)
        return SigningKey(key, created)


def _read(path: Path) -> SigningKey:
    document = json.loads(path.read_text())
    return SigningKey(ECKey.import_key(document["jwk"]), float(document["created_at"]))
