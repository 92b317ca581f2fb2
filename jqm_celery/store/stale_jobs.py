"""Recovery's side of the store: worker heartbeats, the jobs marked RUNNING, and settling stale ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from jqm_celery.statuses import AttemptStatus, JobStatus, LogKind
from jqm_celery.store import log
from jqm_celery.store.job_records import JobMessage, RunningJob, message_of
from jqm_celery.store.models import JobRow, LogEntryRow
from jqm_celery.store.queue_models import WorkerRow
from jqm_celery.store.statements import close_running_attempt
from jqm_celery.store.store import Store


class StaleJobStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def heartbeat(
        self, hostname: str, started_at: datetime, now: datetime, queues: Sequence[str] = ()
    ) -> None:
        consumed = ",".join(queues)
        with self.store.transaction() as s:
            beat = update(WorkerRow).where(WorkerRow.hostname == hostname)
            values = {"last_seen_at": now, "started_at": started_at, "queues": consumed}
            updated = s.connection().execute(beat.values(**values)).rowcount
            if not updated:
                s.add(WorkerRow(hostname=hostname, started_at=started_at, last_seen_at=now, queues=consumed))

    def workers_seen_since(self, since: datetime) -> dict[str, datetime]:
        """Hostnames of workers that have beaten since ``since``, with the time they started."""
        with self.store.transaction() as s:
            rows = s.execute(
                select(WorkerRow.hostname, WorkerRow.started_at).where(WorkerRow.last_seen_at >= since)
            )
            return dict(rows.all())

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
