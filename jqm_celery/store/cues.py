"""The first page's cues (Business Central's role centre): what needs an operator's eye, counted with
indexed queries whatever the size of the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select

from jqm_celery.statuses import JobStatus, PackageStatus
from jqm_celery.store.models import JobRow, PackageRow
from jqm_celery.store.store import Store

#: How far back the failure cues count.
CUE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Cues:
    #: Runs with a job that failed for good in the window (a FAILED run, or one still going on).
    failed_runs: int
    #: Jobs (of runs and stand-alone) that failed for good in the window.
    failed_jobs: int
    running_jobs: int
    packages_in_error: int
    since: datetime


def cues(store: Store, now: datetime) -> Cues:
    since = now - CUE_WINDOW
    failed = (JobRow.finished_at >= since, JobRow.status == JobStatus.ERROR)
    with store.transaction() as s:
        failed_jobs = s.scalar(select(func.count()).select_from(JobRow).where(*failed)) or 0
        failed_runs = (
            s.scalar(select(func.count(distinct(JobRow.run_id))).where(*failed, JobRow.run_id.is_not(None)))
            or 0
        )
        running = (
            s.scalar(select(func.count()).select_from(JobRow).where(JobRow.status == JobStatus.RUNNING)) or 0
        )
        in_error = (
            s.scalar(
                select(func.count()).select_from(PackageRow).where(PackageRow.status == PackageStatus.ERROR)
            )
            or 0
        )
    return Cues(failed_runs, failed_jobs, running, in_error, since)
