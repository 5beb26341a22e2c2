"""Keyed hashes under the deployment's one pseudonym key.

Every keyed hash of an identifier ringfence writes is made by :func:`keyed_hash` under the key
:func:`pseudonym_key` reads from the data folder (``pseudonym.key``, 0600, made on first use): the
log lines' ``host.openai/session`` and principal fields (logs/context.py) and the audit records'
session hashes (audit/correlation.py). One function and one key, so a record's session hash is its
log lines' ``host.openai/session`` field, and hashes agree across instances sharing the data folder.
Without the key a hash cannot be turned back into the value, nor confirmed by guessing values.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from ringfence.store.secrets import data_secret, existing_data_secret

PSEUDONYM_KEY_NAME = "pseudonym"
HASH_HEX_DIGITS = 16


def pseudonym_key(data_dir: Path) -> bytes:
    """The deployment's pseudonym key, made on first use (:func:`~ringfence.store.secrets.data_secret`)."""
    return data_secret(data_dir, PSEUDONYM_KEY_NAME)


def existing_pseudonym_key(data_dir: Path) -> bytes | None:
    """The pseudonym key, or ``None`` when the data folder has none (it is never made here)."""
    return existing_data_secret(data_dir, PSEUDONYM_KEY_NAME)


def keyed_hash(key: bytes, purpose: str, value: str) -> str:
    """``HMAC-SHA256(key, "<purpose>\\0<value>")``, its first 16 hex digits: one value hashes differently
    for each ``purpose`` (``openai/session``, ``principal``...)."""
    message = f"{purpose}\x00{value}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:HASH_HEX_DIGITS]
