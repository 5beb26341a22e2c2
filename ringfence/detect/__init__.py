"""Offline detectors: personal data and secrets (redaction) and prompt injection.

Deterministic: no network, no model downloads, standard library only. Both are written here
rather than taken from Presidio or a transformer classifier because speed is the point: they sit
on every log line and every tool result. The injection detector's learned stage is a linear model
whose weights ship in ``model/`` and are read once per process (``injection_model``).
"""

from ringfence.detect.injection import Classifier, InjectionDetector, InjectionFinding, Verdict
from ringfence.detect.normalize import decode_tag_smuggling
from ringfence.detect.patterns import TYPES
from ringfence.detect.redactor import Finding, Redactor, redact_value

__all__ = [
    "TYPES",
    "Classifier",
    "Finding",
    "InjectionDetector",
    "InjectionFinding",
    "Redactor",
    "Verdict",
    "decode_tag_smuggling",
    "redact_value",
]
