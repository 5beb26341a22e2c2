"""Operations: Prometheus metrics, suspicious-activity detectors and their alerts, tracing spans.

Everything here is driven by :class:`ringfence.events.SecurityEvent`: the metrics and the
detectors are event observers, so each security-relevant fact is said once, where it happens.
"""
