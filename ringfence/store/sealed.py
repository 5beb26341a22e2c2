"""Secrets that must be read back (a login provider's tokens), sealed at rest with AES-256-GCM.

What ringfence only has to recognise again (refresh tokens, codes, client secrets) is stored as a
hash; a provider's token must be sent to the provider, so it is encrypted instead, with
``cryptography``'s AES-GCM and a key kept as a 0600 file in the data folder (:mod:`.secrets`).
Each value is bound to where it is stored (its ``context``: the table, row and column), so a sealed
value copied into another row does not open there.

A sealed value reads ``v1.`` followed by base64url(nonce ‖ ciphertext ‖ tag), with a fresh random
96-bit nonce each time (NIST SP 800-38D §8.2.2).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ringfence.store.secrets import KEY_BYTES, data_secret

VERSION = "v1."
NONCE_BYTES = 12


class SealBroken(Exception):
    """A sealed value that does not open: another key, another row, or altered."""


class Sealer:
    """Seals and opens strings with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key[:KEY_BYTES])

    @classmethod
    def in_data_dir(cls, data_dir: Path, name: str) -> Sealer:
        """The sealer keyed by ``data_dir/{name}.key`` (made, 0600, on first use)."""
        return cls(data_secret(data_dir, name))

    def seal(self, value: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, value.encode(), context.encode())
        return VERSION + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> str:
        if not sealed.startswith(VERSION):
            raise SealBroken("not a sealed value of this version")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(VERSION):].encode("ascii"))
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, ValueError, UnicodeError):
            raise SealBroken("the sealed value does not open with this key in this place") from None
