"""``examples/contacts/app.py`` as it is, with rate-limit budgets too large to ever refuse a call.

Every call still spends from all four budgets (per principal, client, address and tool), so the
cost of the check is measured; only the refusals are out of the way of a load test.

    ringfence serve bench/calls/contacts_unmetered.py
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ringfence.ops.ratelimit import Rate
from ringfence.ops.ratelimit_keys import RateLimits

_PATH = Path(__file__).resolve().parents[2] / "examples" / "contacts" / "app.py"
_spec = importlib.util.spec_from_file_location("contacts_reference_app", _PATH)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)

UNMETERED = Rate(100_000, 1.0)  # 100,000 calls a second per budget: never reached here
app = _module.app
app.rate_limits = RateLimits(per_principal=UNMETERED, per_address=UNMETERED, per_client=UNMETERED,
                             per_tool=UNMETERED)
