"""Per-deployment secret keys kept as 0600 files in the data directory.

Used for keyed hashes (pseudonyms in logs and audit payloads) that must be the same in every
instance sharing the data directory, and unreadable without the key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ringfence.store.private import private_folder

KEY_BYTES = 32


def data_secret(data_dir: Path, name: str) -> bytes:
    """The key ``name`` in ``data_dir``, created (32 random bytes, mode 0600) on first use.

    Processes creating it at once agree: each writes a private temporary file, and only the
    first hard link to the final name succeeds, so the key file is never seen half-written.
    """
    private_folder(data_dir)
    path = data_dir / f"{name}.key"
    if not path.exists():
        temporary = data_dir / f".{name}.{secrets.token_hex(8)}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(secrets.token_bytes(KEY_BYTES))
                file.flush()
                os.fsync(file.fileno())  # on disk before it gets its name: never an empty key after a power cut
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process won; its key is the key
        finally:
            temporary.unlink(missing_ok=True)
    return _checked(path)


def existing_data_secret(data_dir: Path, name: str) -> bytes | None:
    """The key ``name`` in ``data_dir`` if it was made, else ``None``; never creates one."""
    path = data_dir / f"{name}.key"
    return _checked(path) if path.exists() else None


def _checked(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise RuntimeError(f"the key file {path} is damaged; restore it from a backup of the data directory")
    return key
