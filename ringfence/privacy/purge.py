"""The purge: one pass deletes everything past its retention period, and a schedule repeats it.

Every step is a plain conditional ``DELETE`` (or the audit log's own payload erasure), so a pass is
idempotent and several instances may run it at once: whichever deletes a row first wins, the
others delete nothing. A step that fails is logged and tried again on the next pass; the other
steps still run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ringfence.config import Settings
from ringfence.personal_data import PersonalData
from ringfence.privacy.holdings import all_holdings, retention_of
from ringfence.store.database import Database

logger = logging.getLogger("ringfence.privacy")

FIRST_PASS_DELAY_SECONDS = 10.0  # soon after start, once the server is answering


@dataclass
class PurgeReport:
    """Rows (or payloads) removed per kind; ``None``: not counted (an app hook in a dry run)."""

    counts: dict[str, int | None] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


class Purge:
    """One purge pass over every holder of personal data (:mod:`ringfence.privacy.holdings`)."""

    def __init__(self, database: Database, data_dir: Path, settings: Settings,
                 personal_data: Mapping[str, PersonalData] | None = None) -> None:
        self.kept = retention_of(settings)
        self.holdings = all_holdings(database, data_dir, personal_data)

    async def run(self, *, now: float | None = None, dry_run: bool = False) -> PurgeReport:
        """Delete (or, with ``dry_run``, count) what is past retention at ``now`` (default: the clock)."""
        moment = time.time() if now is None else now
        report = PurgeReport()
        for _, holder in self.holdings:
            for kind, step in holder.purge_steps(self.kept, moment, dry_run=dry_run):
                try:
                    report.counts[kind] = await step()
                except Exception as exc:  # one kind failing must not stop the others; retried next pass
                    logger.error("purge of %s failed (%s); it is retried on the next pass", kind, type(exc).__name__)
                    logger.debug("purge of %s failed", kind, exc_info=True)
                    report.failed.append(kind)
        return report


class PurgeSchedule:
    """Runs a purge soon after start and then every ``interval`` seconds until cancelled; never raises.

    ``sweeps`` run after each pass: deletions that need the running server (they call out, e.g. to
    revoke a token at a login provider), which ``ringfence privacy purge`` cannot make; a slow or
    unreachable provider delays only them, never the retention purge."""

    def __init__(self, purge: Purge, interval: float, first_delay: float = FIRST_PASS_DELAY_SECONDS,
                 sweeps: Sequence[Callable[[], Awaitable[int]]] = ()) -> None:
        self.purge = purge
        self.interval = interval
        self.first_delay = first_delay
        self.sweeps = list(sweeps)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ringfence-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                report = await self.purge.run()
                removed = {kind: count for kind, count in report.counts.items() if count}
                if removed:
                    logger.info("purge removed %s", ", ".join(f"{count} {kind}" for kind, count in removed.items()))
            except Exception as exc:  # a bug in one pass must not end the schedule
                logger.error("purge pass failed (%s); retrying in %d s", type(exc).__name__, self.interval)
            for sweep in self.sweeps:
                try:
                    await sweep()
                except Exception as exc:  # retried on the next pass, like a purge step
                    logger.error("purge sweep failed (%s); retrying in %d s", type(exc).__name__, self.interval)
            await asyncio.sleep(self.interval)
