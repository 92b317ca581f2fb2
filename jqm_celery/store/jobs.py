"""Stand-alone jobs and the controls every job shares: cancel, abort, re-add, clean.

Stand-alone jobs live in ``jqm_job`` beside package jobs (no run, no package, a queue) and log their
attempts in the same ``jqm_log_entry``. Every control is one conditional UPDATE, so two operators — or an
operator and a worker — acting at once never both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from jqm_celery.errors import NotFoundError, StateError, ValidationError, did_you_mean
from jqm_celery.paging import NEWEST, Window, keyset
from jqm_celery.queue_records import AuditAction, QueueState
from jqm_celery.records import Job
from jqm_celery.statuses import (
    FINISHED_JOB,
    WAITING_JOB,
    AttemptStatus,
    JobStatus,
    LogKind,
    RunStatus,
)
from jqm_celery.store import convert, lifecycle, log
from jqm_celery.store.audit import record
from jqm_celery.store.job_records import (
    Aborted,
    CancelledRun,
    JobMessage,
    NewJob,
    RunningJob,
    message_of,
)
from jqm_celery.store.log import LogLine
from jqm_celery.store.models import JobRow, LogEntryRow, RunRow
from jqm_celery.store.queue_models import QueueRow
from jqm_celery.store.stale_jobs import StaleJobStore
from jqm_celery.store.statements import close_running_attempt

_WAITING = [s.value for s in WAITING_JOB]
#: A stand-alone job in one of these statuses may be re-added (the seed's "Add Jobs to Queue").
REQUEUEABLE = frozenset({JobStatus.DONE, JobStatus.CANCELLED, JobStatus.ABORTED, JobStatus.ERROR})
_CLEANABLE = [s.value for s in FINISHED_JOB]


class JobStore(StaleJobStore):
    """Stand-alone jobs, queues and the controls of every job (recovery's part: ``StaleJobStore``)."""

    # -- queues -----------------------------------------------------------------------------

    def define_queue(self, name: str, pool_size: int, now: datetime, actor: str) -> None:
        with self.store.transaction() as s:
            row = s.get(QueueRow, name, with_for_update=True)
            if row is None:
                s.add(QueueRow(name=name, pool_size=pool_size, created_at=now, updated_at=now))
            elif row.pool_size == pool_size:
                return
            else:
                row.pool_size = pool_size
                row.updated_at = now
            record(
                s, now, actor, AuditAction.DEFINE_QUEUE, f"queue '{name}'", detail=f"pool size {pool_size}"
            )

    def queue_sizes(self) -> dict[str, int]:
        with self.store.transaction() as s:
            return dict(s.execute(select(QueueRow.name, QueueRow.pool_size)).all())

    def queues(self) -> list[QueueState]:
        """Defined queues, and queues that jobs name, with their jobs counted by status."""
        counted = [*_WAITING, JobStatus.RUNNING, JobStatus.ERROR]
        with self.store.transaction() as s:
            defined = s.execute(select(QueueRow.name, QueueRow.pool_size, QueueRow.paused)).all()
            sizes = {name: size for name, size, _ in defined}
            paused = {name for name, _, is_paused in defined if is_paused}
            rows = s.execute(
                select(JobRow.queue, JobRow.status, func.count())
                .where(JobRow.status.in_(counted), JobRow.queue.is_not(None))
                .group_by(JobRow.queue, JobRow.status)
            ).all()
            counts: dict[str, dict[str, int]] = {}
            for queue, status, n in rows:
                counts.setdefault(str(queue), {})[status] = n
        return [
            QueueState(
                name=name,
                pool_size=sizes.get(name),
                queued=counts.get(name, {}).get(JobStatus.QUEUED, 0),
                delayed=counts.get(name, {}).get(JobStatus.DELAYED, 0),
                running=counts.get(name, {}).get(JobStatus.RUNNING, 0),
                retrying=counts.get(name, {}).get(JobStatus.RETRYING, 0),
                failed=counts.get(name, {}).get(JobStatus.ERROR, 0),
                paused=name in paused,
            )
            for name in sorted(set(sizes) | set(counts))
        ]

    # -- stand-alone jobs -------------------------------------------------------------------

    def add_jobs(self, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        """Store the jobs (QUEUED, or DELAYED when they have a ``not_before``); their ids, in order."""
        values = [
            {
                "run_id": None,
                "package_name": None,
                "position": 0,
                "task": job.task,
                "args": job.args,
                "kwargs": job.kwargs,
                "run_order": 0,
                "queue": job.queue,
                "retry_policy": job.retry_policy,
                "soft_time_limit_s": job.soft_time_limit_s,
                "time_limit_s": job.time_limit_s,
                "description": job.description,
                "status": JobStatus.DELAYED if job.not_before else JobStatus.QUEUED,
                "max_retries": job.max_retries,
                "celery_task_id": job.celery_task_id,
                "created_at": now,
                "not_before": job.not_before,
            }
            for job in jobs
        ]
        return self.store.writer.add_jobs(values)

    def fail_unsent(self, job_ids: Sequence[int], now: datetime, error: str) -> None:
        """The broker refused the jobs' messages: they will never start."""
        with self.store.transaction() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id.in_(job_ids), JobRow.status.in_(_WAITING))
                .values(status=JobStatus.ERROR, finished_at=now, error=error)
            )

    def job(self, job_id: int) -> Job:
        with self.store.transaction() as s:
            row = _job_row(s, job_id)
            attempts = s.scalars(
                select(LogEntryRow)
                .where(LogEntryRow.job_id == job_id, LogEntryRow.kind == LogKind.ATTEMPT)
                .order_by(LogEntryRow.id)
            ).all()
            return convert.job(row, attempts)

    def jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        stand_alone: bool = True,
        limit: int = 100,
        worker: str | None = None,
        package: str | None = None,
        window: Window = NEWEST,
    ) -> list[Job]:
        """Newest first."""
        query = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        query = keyset(query, window, JobRow.id, JobRow.created_at)
        if worker is not None:
            query = query.where(JobRow.worker == worker)
        if package is not None:
            query = query.where(JobRow.package_name == package)
        if stand_alone:
            query = query.where(JobRow.run_id.is_(None))
        if queue is not None:
            query = query.where(JobRow.queue == queue)
        if status is not None:
            query = query.where(JobRow.status == status)
        with self.store.transaction() as s:
            return [convert.job(row) for row in s.scalars(query)]

    # -- controls ---------------------------------------------------------------------------

    def cancel(self, job_id: int, now: datetime, actor: str) -> str | None:
        """QUEUED, DELAYED or RETRYING → CANCELLED; returns the Celery task id to revoke."""
        with self.store.transaction() as s:
            row = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(_WAITING))
                .values(status=JobStatus.CANCELLED, finished_at=now)
                .returning(JobRow.run_id, JobRow.package_name, JobRow.task, JobRow.celery_task_id)
            ).one_or_none()
            if row is None:
                status = _job_row(s, job_id).status
                hint = (
                    f"; to stop it while it runs: jqm.abort({job_id})" if status == JobStatus.RUNNING else ""
                )
                raise StateError(
                    f"job {job_id} is {status}: only a QUEUED, DELAYED or RETRYING job can be cancelled{hint}"
                )
            message = f"cancelled by {actor}: the job will not start"
            line = log.job_line(LogKind.JOB_CANCELLED, JobStatus.CANCELLED, now, job_id, row, message=message)
            log.write(s, [line])
            record(
                s, now, actor, AuditAction.CANCEL, f"job {job_id}", package=row.package_name, detail=row.task
            )
            return None if row.celery_task_id is None else str(row.celery_task_id)

    def abort(self, job_id: int, now: datetime, actor: str) -> Aborted:
        """RUNNING → ABORTED, its attempt too; the caller then terminates it on its worker."""
        with self.store.transaction() as s:
            aborted = _abort(s, job_id, now, f"aborted by {actor}")
            if aborted is None:
                status = _job_row(s, job_id).status
                hint = f"; it has not started: jqm.cancel({job_id})" if status in _WAITING else ""
                raise StateError(f"job {job_id} is {status}: only a RUNNING job can be aborted{hint}")
            package = s.scalar(select(JobRow.package_name).where(JobRow.id == job_id))
            record(s, now, actor, AuditAction.ABORT, f"job {job_id}", package=package, detail=aborted.task)
            return aborted

    def requeue(self, job_id: int, now: datetime, actor: str, celery_task_id: str) -> JobMessage:
        """DONE, CANCELLED, ABORTED or ERROR → QUEUED with a fresh retry count; its log continues."""
        with self.store.transaction() as s:
            row = _job_row(s, job_id, lock=True)
            if row.run_id is not None:
                raise StateError(
                    f"job {job_id} belongs to run {row.run_id} of package '{row.package_name}': run the "
                    f"package again instead (jqm.run_now('{row.package_name}'))"
                )
            if row.status not in REQUEUEABLE:
                raise StateError(
                    f"job {job_id} is {row.status}: only a DONE, CANCELLED, ABORTED or ERROR job can be "
                    "added to its queue again"
                    + (f"; abort it first (jqm.abort({job_id}))" if row.status == JobStatus.RUNNING else "")
                )
            previous = row.status
            row.status = JobStatus.QUEUED
            row.retry = 0
            row.current_delay_s = 0.0
            row.error = None
            row.worker = None
            row.started_at = None
            row.finished_at = None
            row.not_before = None
            row.celery_task_id = celery_task_id
            log.write(
                s,
                [
                    LogLine(
                        LogKind.JOB_REQUEUED,
                        JobStatus.QUEUED,
                        now,
                        job_id=job_id,
                        task=row.task,
                        message=f"added to queue '{row.queue}' again by {actor} (was {previous})",
                    )
                ],
            )
            record(s, now, actor, AuditAction.REQUEUE, f"job {job_id}", detail=f"{row.task} (was {previous})")
            return message_of(row)

    def cancel_run(self, run_id: int, now: datetime, actor: str) -> CancelledRun:
        """Stop a run: waiting jobs are skipped, running ones aborted, and the run ends STOPPED.

        Its end starts the package's next queued run (``CancelledRun.next_run``, for the caller to send).
        """
        with self.store.transaction() as s:
            run = s.get(RunRow, run_id, with_for_update=True)
            if run is None:
                raise NotFoundError(f"run {run_id} does not exist; list runs with `jqm runs list`")
            if RunStatus(run.status).finished:
                raise StateError(
                    f"run {run_id} of '{run.package_name}' is {run.status}: it has already finished"
                )
            reason = f"run cancelled by {actor}"
            was_queued = run.status == RunStatus.QUEUED
            lifecycle.stop(s, run, now, reason, LogKind.RUN_CANCELLED)
            running = s.scalars(
                select(JobRow.id).where(JobRow.run_id == run_id, JobRow.status == JobStatus.RUNNING)
            ).all()
            aborted = [a for a in (_abort(s, job_id, now, reason) for job_id in running) if a is not None]
            next_run = None
            if not was_queued:
                message = f"run finished: STOPPED ({reason})"
                next_run = lifecycle.end(s, run, RunStatus.STOPPED, now, message=message).next_run
            record(
                s,
                now,
                actor,
                AuditAction.CANCEL_RUN,
                f"run {run_id}",
                package=run.package_name,
                detail=f"{len(aborted)} running job(s) aborted",
            )
            return CancelledRun(aborted, next_run)

    # -- clean ------------------------------------------------------------------------------

    def cleanable(self, before: datetime) -> int:
        with self.store.transaction() as s:
            return s.scalar(select(func.count()).select_from(JobRow).where(*_cleanable(before))) or 0

    def clean_batch(self, before: datetime, batch_size: int) -> tuple[int, int]:
        """Delete up to ``batch_size`` finished stand-alone jobs and their log entries; (jobs, entries)."""
        batch = select(JobRow.id).where(*_cleanable(before)).limit(batch_size).scalar_subquery()
        with self.store.transaction() as s:
            # The conditions are checked again by the statement that deletes: a job re-added or started
            # since the batch was chosen is left alone.
            ids = list(
                s.scalars(
                    delete(JobRow).where(JobRow.id.in_(batch), *_cleanable(before)).returning(JobRow.id)
                )
            )
            if not ids:
                return 0, 0
            logs = _count(s.execute(delete(LogEntryRow).where(LogEntryRow.job_id.in_(ids))))
            return len(ids), logs


def _count(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _job_row(s: Session, job_id: int, *, lock: bool = False) -> JobRow:
    row = s.get(JobRow, job_id, with_for_update=lock)
    if row is None:
        raise NotFoundError(f"job {job_id} does not exist; list jobs with `jqm jobs list`")
    return row


def _abort(s: Session, job_id: int, now: datetime, reason: str) -> Aborted | None:
    row = s.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status == JobStatus.RUNNING)
        .values(status=JobStatus.ABORTED, finished_at=now, error=reason)
        .returning(JobRow.run_id, JobRow.package_name, JobRow.task, JobRow.run_order, JobRow.celery_task_id)
    ).one_or_none()
    if row is None:
        return None
    s.execute(close_running_attempt(job_id, AttemptStatus.ABORTED, now, reason))
    line = log.job_line(LogKind.JOB_ABORTED, JobStatus.ABORTED, now, job_id, row, message=reason)
    log.write(s, [line])
    return Aborted(job_id, row.run_id, row.task, row.celery_task_id, row.run_order)


def _cleanable(before: datetime) -> tuple[Any, ...]:
    return (JobRow.run_id.is_(None), JobRow.status.in_(_CLEANABLE), JobRow.finished_at < before)


def unknown_queue(name: str, known: Sequence[str]) -> ValidationError:
    return ValidationError(
        f"queue '{name}' is not defined{did_you_mean(name, known)}; define it first: "
        f"jqm.define_queue('{name}', pool_size=4)"
    )


__all__ = ["Aborted", "CancelledRun", "JobMessage", "JobStore", "NewJob", "RunningJob", "unknown_queue"]
