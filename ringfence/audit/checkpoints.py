"""Signed checkpoints: an Ed25519 signature over a record's sequence number and hash.

The hash chain shows that records were changed; it cannot show that the newest ones were cut
off, nor that someone recomputed every hash after a change, because anyone can compute
SHA-256. A checkpoint can: it is signed with a key kept in the data folder, not in the
database, so ``verify`` knows the chain held record N with that hash, and that it still must.
Checkpoints are stored in the database and copied to a file in the data folder, so deleting
them from the database alone does not hide a truncation.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ringfence.audit.errors import AuditError
from ringfence.audit.records import canonical_json, sha256_hex
from ringfence.store.private import private_folder

KEY_FILE = "audit-checkpoint.key"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
# Domain separation: a checkpoint signature can never be mistaken for a signature over anything else.
SIGNING_CONTEXT = b"ringfence audit checkpoint v1\n"

logger = logging.getLogger("ringfence.audit")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    record_hash: str
    ts: str
    key_id: str
    signature: str  # hex

    def signed_message(self) -> bytes:
        return SIGNING_CONTEXT + canonical_json(
            {"seq": self.seq, "record_hash": self.record_hash, "ts": self.ts, "key_id": self.key_id}
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class CheckpointKey:
    """The checkpoint signing key: ``DATA_DIR/audit-checkpoint.key``, PKCS#8 PEM, mode 0600."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        raw = self._public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = sha256_hex(raw)[:16]

    @classmethod
    def load(cls, data_dir: Path) -> CheckpointKey | None:
        """The key in the data folder, or ``None`` if there is none (nothing is created)."""
        path = data_dir / KEY_FILE
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{path} is not an unencrypted Ed25519 private key (PKCS#8 PEM)")
        return cls(key)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> tuple[CheckpointKey, bool]:
        """The key, created on first use; also says whether it was created just now.

        Safe when several processes start at once: the file appears complete or not at all.
        """
        existing = cls.load(data_dir)
        if existing is not None:
            return existing, False
        private_folder(data_dir)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # mkstemp creates the file with mode 0600: private key material is never readable by others.
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=".audit-checkpoint-", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temporary, data_dir / KEY_FILE)  # atomic, and fails if another process won
                created = True
            except FileExistsError:
                created = False
        finally:
            os.unlink(temporary)
        key = cls.load(data_dir)
        assert key is not None
        return key, created

    def sign(self, seq: int, record_hash: str, ts: str) -> Checkpoint:
        unsigned = Checkpoint(seq, record_hash, ts, self.key_id, "")
        signature = self._private_key.sign(unsigned.signed_message()).hex()
        return Checkpoint(seq, record_hash, ts, self.key_id, signature)

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """Why the checkpoint was not signed by this key, or ``None`` if it was."""
        if checkpoint.key_id != self.key_id:
            return f"it names key {checkpoint.key_id}, not this data folder's key {self.key_id}"
        try:
            self._public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_message())
        except (InvalidSignature, ValueError):
            return "its signature does not verify"
        return None


class CheckpointFile:
    """The copy of the checkpoints in ``DATA_DIR/audit-checkpoints.jsonl``, one JSON object a line."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CHECKPOINT_FILE

    def append(self, checkpoint: Checkpoint) -> None:
        line = json.dumps(checkpoint.as_json(), separators=(",", ":")) + "\n"
        # O_APPEND: each line is one write at the end, so processes appending at once do not interleave.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(line)

    def read(self) -> list[Checkpoint]:
        """The checkpoints in the file; a line that is not one (a torn write) is skipped with a warning."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        checkpoints = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                checkpoints.append(Checkpoint(
                    int(fields["seq"]), str(fields["record_hash"]), str(fields["ts"]), str(fields["key_id"]),
                    str(fields["signature"]),
                ))
            except (ValueError, KeyError, TypeError):
                logger.warning("%s line %d is not a checkpoint; skipped", self.path, number)
        return checkpoints
