"""Automatic signed checkpoints, so that the tail a database writer could cut unnoticed is bounded.

Records after the newest checkpoint are protected by the hash chain only, and someone with
write access to the database can delete them and move the chain head back. The server signs
the newest record every ``every`` records it writes or every ``interval`` seconds, whichever
comes first (and once more when it stops), so at most that many records, or that much time,
are ever unsigned. Signing runs in a background task: an append only compares two numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ringfence.audit.log import AuditLog

logger = logging.getLogger("ringfence.audit")


class CheckpointSchedule:
    """Signs ``log``'s newest record after ``every`` new records or ``interval`` seconds; never raises."""

    def __init__(self, log: AuditLog, *, every: int, interval: float) -> None:
        if every < 1 or interval <= 0:
            raise ValueError("checkpoints need every >= 1 record and an interval > 0 seconds")
        self.log = log
        self.every = every
        self.interval = interval
        self._signed_seq = 0  # the newest checkpoint this schedule made or found
        self._due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._due = asyncio.Event()  # of the running event loop
        self.log.committed = self._committed
        self._task = asyncio.create_task(self._loop(), name="ringfence-audit-checkpoints")

    async def stop(self) -> None:
        """Stop the task, then sign what was written since the last checkpoint."""
        self.log.committed = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._sign()

    def _committed(self, seq: int) -> None:
        # On every commit of appends, on the event loop: one subtraction and one comparison.
        if seq - self._signed_seq >= self.every:
            self._due.set()

    async def _loop(self) -> None:
        while True:  # first pass at once: the tail an earlier run left, and the key if there is none
            self._due.clear()
            if await self._sign():
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation that
                # arrives as the event is set, and stop() would then wait for ever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._due.wait()
            else:  # the database may be down: try again after the interval, not on every commit
                await asyncio.sleep(self.interval)

    async def _sign(self) -> bool:
        try:
            checkpoint = await self.log.checkpoint(create_key=True)
        except Exception as exc:
            logger.error("could not sign an audit checkpoint (%s); trying again in %g s",
                         type(exc).__name__, self.interval)
            return False
        if checkpoint is not None:
            self._signed_seq = checkpoint.seq
        return True
