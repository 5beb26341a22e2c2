"""Import ``ringfence.detect`` from this checkout without importing the rest of ringfence.

The detectors use the standard library only, so the benchmarks can run in a virtualenv that holds
just the tool being compared (Presidio, the corpora) and not ringfence's server dependencies.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def use_local_ringfence() -> None:
    if "ringfence" not in sys.modules:
        package = types.ModuleType("ringfence")
        package.__path__ = [str(REPO / "ringfence")]
        sys.modules["ringfence"] = package
