"""The tamper-evident audit log: one hash chain of security events, signed checkpoints, erasure.

``AuditLog(database, data_dir)`` appends, erases payloads, verifies and queries; each record
carries the request id and the hashed host session id of the request that wrote it (``correlation``);
``ringfence.cli.audit`` holds the ``ringfence audit verify`` and ``show`` commands.
"""
