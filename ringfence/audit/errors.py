"""The audit log's one error type."""


class AuditError(Exception):
    """The audit log cannot be used or checked as asked; the message says why and what to do."""
