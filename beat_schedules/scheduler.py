"""``PackageScheduler``: a Celery beat scheduler whose schedule is the jqm store.

Use it with ``celery -A proj beat -S beat_schedules:PackageScheduler`` (or ``jqm beat``). Each tick fires
the due recurrences of ACTIVE packages, sends their runs, and sleeps until the next due time, at most
``max_interval`` (1 s), so activating, holding or editing a package takes effect within a second without
restarting beat. Every ``jqm_reconcile_interval_s`` a tick also runs the reconciler (``jqm_celery.recovery``).
Entries of the app's own ``beat_schedule`` still run as with Celery's default scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.beat import Scheduler

from jqm_celery.manager import JobQueueManager
from jqm_celery.plans import RunPlan
from jqm_celery.store.engine import redact

logger = logging.getLogger("beat_schedules")


class PackageScheduler(Scheduler):  # type: ignore[misc]
    """Fires jqm recurrences from the store; any number of these may run at once.

    On PostgreSQL every beat ticks and each claims different due recurrences (``FOR UPDATE SKIP
    LOCKED``); on SQLite one beat holds a lease and the others wait to take over, at once when it
    closes.
    """

    #: Longest sleep between ticks, in seconds: the delay before a change in the store takes effect.
    max_interval = 1.0
    #: A due instant older than this counts as missed while beat was down (the package's catch_up applies).
    catch_up_grace = timedelta(seconds=10)
    #: Due recurrences claimed per transaction.
    batch_size = 500
    #: Due recurrences fired per tick (in transactions of ``batch_size``) before their runs are sent; more
    #: are fired by the next tick, at once.
    fire_per_tick = 2000
    #: … or fewer, once their runs have this many jobs.
    fire_jobs_per_tick = 10_000
    #: A run still unsent this long after its fire was left by a beat that died; it is replaced.
    recover_after = timedelta(seconds=15)
    #: How often, in seconds, a tick also looks for such runs.
    recover_every_s = 5.0

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        self.jqm = JobQueueManager.of(app)
        if logging.getLogger().level == logging.WARNING and logger.getEffectiveLevel() > logging.INFO:
            # At Celery beat's default log level (WARNING) a scheduler that fires runs would print nothing
            # and look broken; the runs it starts are its output. An explicit ERROR or INFO is left alone.
            logger.setLevel(logging.INFO)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._next_recovery = 0.0
        self._next_reconciliation = 0.0
        super().__init__(app, *args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        wait = self._fire_recurrences()
        self._reconcile()
        classic: float = super().tick(*args, **kwargs)
        return min(wait, classic)

    def _reconcile(self) -> None:
        """Every reconcile interval, the same reconciliation as every worker's (without a heartbeat: beat
        runs no jobs), so lost jobs are sent again while beat runs, whatever the workers are doing."""
        if time.monotonic() < self._next_reconciliation:
            return
        reconciler = self.jqm.reconciler
        self._next_reconciliation = time.monotonic() + reconciler.interval_s
        try:
            reconciler.reconcile_and_log(f"beat {self.holder}")
        except Exception:
            logger.exception("beat: reconciliation failed; trying again in %g s", reconciler.interval_s)

    def _fire_recurrences(self) -> float:
        recover = time.monotonic() >= self._next_recovery
        try:
            result = self.jqm.fire_recurrences(
                grace=self.catch_up_grace,
                limit=self.batch_size,
                per_tick=self.fire_per_tick,
                jobs_per_tick=self.fire_jobs_per_tick,
                holder=self.holder,
                recover_after=self.recover_after if recover else None,
            )
        except Exception:
            # A store that is briefly unreachable must not stop beat; the next tick tries again.
            logger.exception("beat: could not fire due recurrences; trying again in %s s", self.max_interval)
            return float(self.max_interval)
        if recover:
            self._next_recovery = time.monotonic() + self.recover_every_s
        if result.plans:
            logger.info("beat: started %s for %d due recurrence(s)", _describe(result.plans), result.claimed)
        if result.more_due:
            return 0.0
        wait = float(self.max_interval)
        if result.next_due_at is not None:
            until_due = (result.next_due_at - self.jqm.clock.now()).total_seconds()
            wait = min(wait, max(until_due, 0.0))
        return wait

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_lease()

    def _release_lease(self) -> None:
        try:
            self.jqm.release_beat_lease(self.holder)
        except Exception:
            # The lease then expires on its own; a beat shutting down must still shut down.
            logger.exception("beat: could not release the lease; another beat takes over once it expires")

    @property
    def info(self) -> str:
        return f"    . jqm store -> {redact(self.jqm.settings.database_url)}"


def _describe(plans: tuple[RunPlan, ...], shown: int = 5) -> str:
    """``run #12 of 'nightly-billing', run #13 of 'eu-export'`` (and how many more)."""
    named = ", ".join(f"run #{plan.run_id} of '{plan.package}'" for plan in plans[:shown])
    return named if len(plans) <= shown else f"{named} and {len(plans) - shown} more run(s)"
