"""The tamper-evident audit log: one hash chain of security events, signed checkpoints, erasure.

``AuditLog(database, data_dir)`` appends, erases payloads, verifies and queries;
``ringfence.audit.commands`` holds the ``ringfence audit verify`` and ``show`` commands.
"""

from ringfence.audit.checkpoints import Checkpoint
from ringfence.audit.errors import AuditError
from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.audit.records import EventKind
from ringfence.audit.verification import Damage, DamageKind, VerifyReport

__all__ = ["AuditError", "AuditLog", "AuditRecord", "Checkpoint", "Damage", "DamageKind", "EventKind", "VerifyReport"]
