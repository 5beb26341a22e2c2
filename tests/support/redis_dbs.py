"""The local Redis databases the tests use: four of their own for each pytest-xdist worker.

``scripts/test`` runs the suite in two worker processes, a test file always in one of them. Suites
that flush a database, or clear the rate-limit budgets in it, must not do so under a test of the
other worker, so each worker gets its own: 15-12 for the first (and for a run without xdist),
11-8 for the second, 7-4 for a third. Databases 0-3 are left alone: a developer's own data is in 0.
"""

from __future__ import annotations

import os

REDIS = "redis://127.0.0.1:6379"
PER_WORKER = 4
MOST_WORKERS = 3

# What each suite's slot is for (its number among this worker's four).
LIMITER = 0  # tests/ops/test_ratelimit_redis.py: flushed around each test
LIMITED_CALLS = 1  # tests/ops/test_rate_limited_calls.py: flushed around each test
THROTTLES = 2  # tests/authserver/test_shared_throttles.py: flushed before the servers start
INSTANCES = 3  # tests/instances, tests/faults, shared private_key_jwt clients: rate-limit keys cleared


def worker_index() -> int:
    """0 for pytest-xdist's ``gw0`` and for a run without xdist, 1 for ``gw1``, and so on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw"))


def redis_db(slot: int) -> int:
    """This worker's database for ``slot`` (0-3)."""
    worker = worker_index()
    if worker >= MOST_WORKERS or not 0 <= slot < PER_WORKER:
        raise RuntimeError(f"the Redis tests have databases for {MOST_WORKERS} workers of {PER_WORKER} slots "
                           f"(worker {worker}, slot {slot}): run them with -n {MOST_WORKERS} or fewer")
    return 15 - PER_WORKER * worker - slot


def redis_url(slot: int) -> str:
    """The URL of this worker's database for ``slot`` on the local Redis."""
    return f"{REDIS}/{redis_db(slot)}"
