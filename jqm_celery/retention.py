"""Retention for package runs (Business Central's "delete entries older than N days"): finished runs older
than a cut-off are deleted with their jobs and log entries, in batches. ``jqm.clean_runs`` does it on
demand; with ``jqm_run_retention_days`` set, one worker a day does it (a reconciler chore). A run that has
not finished is never touched. The store side is ``store/retention.py``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from jqm_celery.batches import CLEAN_BATCH, cut_off, delete_in_batches
from jqm_celery.clock import Clock
from jqm_celery.errors import ConfigError
from jqm_celery.jobqueue import JobQueue
from jqm_celery.queue_records import SCHEDULER, AuditAction, CleanedRuns
from jqm_celery.store.retention import RunRetentionStore

RETENTION_SETTING = "jqm_run_retention_days"
CHORE = "run_retention"
ONCE_A_DAY = timedelta(days=1)

logger = logging.getLogger("jqm_celery")


def run_retention(conf: Any) -> timedelta | None:
    """The ``jqm_run_retention_days`` setting as a timedelta; None (the default) keeps every run."""
    value = conf.get(RETENTION_SETTING)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(
            f"{RETENTION_SETTING} must be a number of days > 0 or None (keep every run), "
            f"got {value!r}; e.g. 90"
        )
    return timedelta(days=value)


class RunRetention:
    def __init__(self, job_queue: JobQueue, clock: Clock, keep: timedelta | None) -> None:
        self.job_queue = job_queue
        self.clock = clock
        self.store = RunRetentionStore(job_queue.jobs_store.store)
        #: The setting: finished runs older than this are deleted once a day (None: never).
        self.keep = keep

    def clean_runs(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        batch_size: int = CLEAN_BATCH,
        progress: Callable[[int, int], None] | None = None,
    ) -> CleanedRuns:
        """Delete finished runs older than ``older_than`` with their jobs and log entries, in batches.

        ``progress(runs deleted so far, runs to delete)`` is called after each batch.
        """
        before = cut_off("clean runs", self.clock.now(), older_than, batch_size, "timedelta(days=90)")
        runs, entries = delete_in_batches(
            self.store.count(before), lambda: self.store.delete_batch(before, batch_size), progress
        )
        self.job_queue.record(
            actor,
            AuditAction.CLEAN_RUNS,
            "runs",
            detail=f"finished before {before:%Y-%m-%d %H:%M:%S} UTC: {runs} run(s), {entries} log entries",
        )
        return CleanedRuns(runs, entries)

    def apply_daily(self) -> CleanedRuns | None:
        """The reconciler's chore: with the setting, clean once a day across all workers (None otherwise)."""
        if self.keep is None or not self.store.claim_chore(CHORE, self.clock.now(), ONCE_A_DAY):
            return None
        cleaned = self.clean_runs(self.keep, actor=SCHEDULER)
        logger.info("jqm run retention: deleted %d run(s), %d log entries", cleaned.runs, cleaned.log_entries)
        return cleaned
