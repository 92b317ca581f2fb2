"""Why a package stopped: its latest failed or stopped run and the attempt in it that failed for good;
and one log entry by id. Read-only queries for the web UI's "Show Error"."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from jqm_celery.errors import NotFoundError
from jqm_celery.records import LogEntry
from jqm_celery.statuses import AttemptStatus, JobStatus, LogKind, RunStatus
from jqm_celery.store.convert import log_entry
from jqm_celery.store.models import JobRow, LogEntryRow, RunRow
from jqm_celery.store.store import Store


@dataclass(frozen=True)
class StopReason:
    """Why a package is in ERROR: its latest run that failed or was stopped, and the attempt in it that
    failed for good (job, attempt, error, traceback) — ``None`` when the run stopped for another reason
    (a lost worker, a run that could not be sent)."""

    run_id: int
    failed: LogEntry | None


def stop_reasons(store: Store, packages: Iterable[str]) -> dict[str, StopReason]:
    """The stop of each of ``packages`` that has a failed or stopped run: three indexed queries for all of
    them (runs by ``(package, status)``, jobs by ``(run, status)``, log entries by job)."""
    names = list(packages)
    if not names:
        return {}
    with store.transaction() as s:
        runs = dict(
            s.execute(
                select(RunRow.package_name, func.max(RunRow.id))
                .where(
                    RunRow.package_name.in_(names),
                    RunRow.status.in_([RunStatus.FAILED, RunStatus.STOPPED]),
                )
                .group_by(RunRow.package_name)
            ).all()
        )
        jobs = dict(
            s.execute(
                select(JobRow.run_id, func.min(JobRow.id))
                .where(JobRow.run_id.in_(list(runs.values())), JobRow.status == JobStatus.ERROR)
                .group_by(JobRow.run_id)
            ).all()
        )
        attempts: dict[int, LogEntry] = {}
        if jobs:
            rows = s.scalars(
                select(LogEntryRow)
                .where(
                    LogEntryRow.job_id.in_(list(jobs.values())),
                    LogEntryRow.kind == LogKind.ATTEMPT,
                    LogEntryRow.status == AttemptStatus.ERROR,
                )
                .order_by(LogEntryRow.id)
            )
            for row in rows:
                if row.job_id is not None:
                    attempts.setdefault(row.job_id, log_entry(row))
    return {
        name: StopReason(run_id, attempts.get(jobs.get(run_id, -1)))
        for name, run_id in runs.items()
        if run_id is not None
    }


def one_log_entry(store: Store, entry_id: int) -> LogEntry:
    with store.transaction() as s:
        row = s.get(LogEntryRow, entry_id)
        if row is None:
            raise NotFoundError(f"log entry {entry_id} does not exist; it may have been cleaned")
        return log_entry(row)
