"""The first page's cues (Business Central's role centre): what needs an operator's eye, counted with
indexed queries whatever the size of the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from jqm_celery.statuses import JobStatus, PackageStatus
from jqm_celery.store.models import JobRow, PackageRow
from jqm_celery.store.store import Store

#: How far back the failure cues count.
CUE_WINDOW = timedelta(hours=24)
#: The failure cues count up to this many failed jobs (the page then says "1000+"): a bounded read.
CUE_CAP = 1000


@dataclass(frozen=True)
class Cues:
    #: Runs with a job that failed for good in the window (a FAILED run, or one still going on), among
    #: the first ``CUE_CAP`` failed jobs.
    failed_runs: int
    #: Jobs (of runs and stand-alone) that failed for good in the window.
    failed_jobs: int
    #: More failed jobs than ``CUE_CAP`` in the window: both failure counts are lower bounds.
    capped: bool
    running_jobs: int
    packages_in_error: int
    since: datetime


def cues(store: Store, now: datetime) -> Cues:
    since = now - CUE_WINDOW
    with store.transaction() as s:
        failed = list(
            s.scalars(
                select(JobRow.run_id)
                .where(JobRow.status == JobStatus.ERROR, JobRow.finished_at >= since)
                .limit(CUE_CAP + 1)
            )
        )[: CUE_CAP + 1]
        running = (
            s.scalar(select(func.count()).select_from(JobRow).where(JobRow.status == JobStatus.RUNNING)) or 0
        )
        in_error = (
            s.scalar(
                select(func.count()).select_from(PackageRow).where(PackageRow.status == PackageStatus.ERROR)
            )
            or 0
        )
    capped = len(failed) > CUE_CAP
    failed = failed[:CUE_CAP]
    runs = len({run_id for run_id in failed if run_id is not None})
    return Cues(runs, len(failed), capped, running, in_error, since)
