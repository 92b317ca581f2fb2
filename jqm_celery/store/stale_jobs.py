"""Recovery's side of the store: worker heartbeats, the jobs marked RUNNING, and settling stale ones.

Liveness has one clock, the database's: a heartbeat writes the database's time, and a worker is live if
its last heartbeat is recent by the database's time, so a worker whose clock is off is neither taken for
dead while it runs nor for live after it died. A worker's ``started_at`` is its own clock's, as are the
starts of the attempts it claims: the two are only compared with each other (did it restart since?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from jqm_celery.statuses import AttemptStatus, JobStatus, LogKind
from jqm_celery.store import log
from jqm_celery.store.job_records import JobMessage, RunningJob, message_of
from jqm_celery.store.lost_jobs import LostJobStore
from jqm_celery.store.models import JobRow, LogEntryRow, UTCDateTime
from jqm_celery.store.queue_models import WorkerRow
from jqm_celery.store.statements import close_running_attempt
from jqm_celery.store.store import Store


@dataclass(frozen=True)
class LiveWorker:
    """A worker seen within the liveness window: when it started (its clock), the queues it consumes."""

    started_at: datetime
    queues: tuple[str, ...]


class _DatabaseNow(FunctionElement[datetime]):
    type = UTCDateTime()
    inherit_cache = True


@compiles(_DatabaseNow)
def _current_timestamp(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(_DatabaseNow, "sqlite")
def _sqlite_now(element: _DatabaseNow, compiler: Any, **kw: Any) -> str:
    # CURRENT_TIMESTAMP has whole seconds on SQLite; heartbeats may be half a second apart.
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def database_now(s: Session) -> datetime:
    """The database's time (on SQLite, whose database is a file, the time of the machine that holds it)."""
    now: datetime = s.execute(select(_DatabaseNow())).scalar_one()
    return now


class StaleJobStore(LostJobStore):
    def __init__(self, store: Store) -> None:
        self.store = store

    def database_now(self) -> datetime:
        with self.store.transaction() as s:
            return database_now(s)

    def heartbeat(self, hostname: str, started_at: datetime, queues: Sequence[str] = ()) -> None:
        """Record that the worker is live now, by the database's clock."""
        consumed = ",".join(queues)
        with self.store.transaction() as s:
            now = database_now(s)
            beat = update(WorkerRow).where(WorkerRow.hostname == hostname)
            values = {"last_seen_at": now, "started_at": started_at, "queues": consumed}
            updated = s.connection().execute(beat.values(**values)).rowcount
            if not updated:
                s.add(WorkerRow(hostname=hostname, started_at=started_at, last_seen_at=now, queues=consumed))

    def live_workers(self, window: timedelta) -> dict[str, LiveWorker]:
        """The workers whose last heartbeat is at most ``window`` old by the database's clock."""
        with self.store.transaction() as s:
            since = database_now(s) - window
            rows = s.execute(
                select(WorkerRow.hostname, WorkerRow.started_at, WorkerRow.queues)
                .where(WorkerRow.last_seen_at >= since)
                .order_by(WorkerRow.hostname)
            ).all()
        return {
            hostname: LiveWorker(started_at, tuple(filter(None, str(queues).split(","))))
            for hostname, started_at, queues in rows
        }

    def running_jobs(self) -> list[RunningJob]:
        with self.store.transaction() as s:
            jobs = s.execute(
                select(
                    JobRow.id,
                    JobRow.run_id,
                    JobRow.run_order,
                    JobRow.task,
                    JobRow.worker,
                    JobRow.celery_task_id,
                    JobRow.time_limit_s,
                ).where(JobRow.status == JobStatus.RUNNING)
            ).all()
            if not jobs:
                return []
            ids = [j.id for j in jobs]
            started = dict(
                s.execute(
                    select(LogEntryRow.job_id, func.max(LogEntryRow.started_at))
                    .where(
                        LogEntryRow.job_id.in_(ids),
                        LogEntryRow.kind == LogKind.ATTEMPT,
                        LogEntryRow.status == AttemptStatus.RUNNING,
                    )
                    .group_by(LogEntryRow.job_id)
                ).all()
            )
            interrupted = dict(
                s.execute(
                    select(LogEntryRow.job_id, func.count())
                    .where(
                        LogEntryRow.job_id.in_(ids),
                        LogEntryRow.kind == LogKind.ATTEMPT,
                        LogEntryRow.status == AttemptStatus.INTERRUPTED,
                    )
                    .group_by(LogEntryRow.job_id)
                ).all()
            )
        return [
            RunningJob(
                j.id,
                j.run_id,
                j.run_order,
                j.task,
                j.worker,
                j.celery_task_id,
                started.get(j.id),
                j.time_limit_s,
                interrupted.get(j.id, 0),
            )
            for j in jobs
        ]

    def settle_stale(
        self, job: RunningJob, now: datetime, reason: str, *, requeue_with: str | None
    ) -> JobMessage | bool:
        """Settle a stale RUNNING job: QUEUED again under a new message id, or ERROR (``requeue_with=None``).

        Returns the message to send, True when it was failed, False when someone else settled it first.
        """
        attempt = AttemptStatus.INTERRUPTED if requeue_with else AttemptStatus.ERROR
        values: dict[str, Any] = (
            {"status": JobStatus.QUEUED, "celery_task_id": requeue_with, "error": None}
            if requeue_with
            else {"status": JobStatus.ERROR, "finished_at": now, "error": reason}
        )
        with self.store.transaction() as s:
            row = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job.job_id,
                    JobRow.status == JobStatus.RUNNING,
                    JobRow.celery_task_id == job.celery_task_id,
                )
                .values(**values)
                .returning(JobRow)
            ).scalar_one_or_none()
            if row is None:
                return False
            s.execute(close_running_attempt(job.job_id, attempt, now, reason))
            line = log.job_line(
                LogKind.JOB_STALE,
                row.status,
                now,
                row.id,
                row,
                message="queued again" if requeue_with else "failed for good",
                error=reason,
            )
            log.write(s, [line])
            return message_of(row) if requeue_with else True
