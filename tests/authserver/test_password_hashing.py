"""Password hashing never runs on the event loop, and a burst of sign-ins queues for a small pool.

Measured over the wire before this (80 concurrent sign-ins, ``ringfence serve``): other requests'
median latency went from 3 ms to 238 ms (max 1.05 s); now 11 ms (max 0.15 s). Here the same property
is checked where it is made: asyncio's own detector of loop steps that block (debug mode's
"Executing ... took N seconds") sees no step anywhere near as long as one argon2 hash while six
sign-ins (known and unknown names) are checked at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ringfence.authserver.passwords import HASHING_THREADS
from ringfence.authserver.users import UserStore
from ringfence.store.database import Database

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery staple"


def one_hash_seconds() -> float:
    """How long one argon2id check with the default parameters takes on this machine, now."""
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    started = time.perf_counter()
    hasher.verify(stored, PASSWORD)
    return time.perf_counter() - started


async def test_sign_ins_are_hashed_off_the_event_loop_in_a_bounded_pool(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
    await database.start()
    try:
        users = UserStore(database)
        await users.add("ada", PASSWORD)
        await users.authenticate("ada", PASSWORD)  # warm: queries compiled, the pool started
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.75 * one_hash_seconds()
        try:
            with caplog.at_level(logging.WARNING, logger="asyncio"):
                signed_in = await asyncio.gather(*(users.authenticate(name, password) for name, password in [
                    ("ada", PASSWORD), ("ada", "wrong password"), ("nobody", PASSWORD)] * 2))
        finally:
            loop.set_debug(False)
        assert [user.username if user else None for user in signed_in] == ["ada", None, None] * 2
        blocking = [record.getMessage() for record in caplog.records if "took" in record.getMessage()]
        assert blocking == [], "the event loop was blocked by a step as long as a hash"
        hashing = [thread for thread in threading.enumerate() if thread.name.startswith("ringfence-argon2")]
        assert 0 < len(hashing) <= HASHING_THREADS
    finally:
        await database.close()
