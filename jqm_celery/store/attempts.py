"""The store's attempts: the hot path of a job (one write to start an attempt, one to end it).

On PostgreSQL each of those writes is one autocommitted prepared statement on the worker's kept
connection (see ``one_statement`` and ``driver``); elsewhere each is a short transaction of the same
statements.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, or_, select, update

from jqm_celery.events import Event
from jqm_celery.plans import ClaimedJob
from jqm_celery.statuses import FINISHED_JOB, WAITING_JOB, AttemptStatus, JobStatus, LogKind
from jqm_celery.store import log, outages, statements, writers
from jqm_celery.store.base import StoreBase
from jqm_celery.store.models import JobRow, LogEntryRow, RunRow
from jqm_celery.store.queue_models import QueueRow

logger = logging.getLogger("jqm_celery")

_WAITING = [s.value for s in WAITING_JOB]
_FINISHED = [s.value for s in FINISHED_JOB]
#: Why a claim tried again after a lost connection closes the attempt it finds (its own first try's).
_UNCONFIRMED_CLAIM = "the database connection was lost before this claim was confirmed; claimed again"


class AttemptStore(StoreBase):
    # -- jobs: the hot path (one transaction to start an attempt, one to end it) ------------

    def claim_job(
        self, job_id: int, worker: str, celery_task_id: str, now: datetime, *, redelivered: bool
    ) -> ClaimedJob | None:
        """Start an attempt: the job becomes RUNNING and its attempt is logged. None if it must not run."""
        params = {"p_job_id": job_id, "p_worker": worker, "p_celery_task_id": celery_task_id, "p_now": now}

        def claim(retried: bool) -> ClaimedJob | None:
            if not (redelivered or retried):
                return self.writer.claim(params)
            # Rare (its worker was lost, or the database): a transaction on every database, which also
            # closes the attempt found; after a lost connection, that is this claim's own if it landed.
            reason = writers.REDELIVERED if redelivered else _UNCONFIRMED_CLAIM
            with self.transaction() as s:
                return writers.claim_in(s, params, redelivered=True, reason=reason)

        return outages.retry_write(claim, self.retry_s, f"claiming job {job_id}")

    def defer_if_paused(self, job_id: int, celery_task_id: str, now: datetime) -> bool:
        """Mark a waiting job whose message was refused because its queue is paused: resuming the queue
        sends it again. False if the queue is not paused (any more), or the message is not the job's.

        The queue's row is read under a share lock, so a resume either waits for this mark (and sends the
        job) or commits first (and this finds the queue open, so the caller claims again).
        """
        with self.transaction() as s:
            queue = s.scalar(select(JobRow.queue).where(JobRow.id == job_id))
            paused = s.scalar(
                select(QueueRow.paused).where(QueueRow.name == queue).with_for_update(read=True)
            )
            if not paused:
                return False
            marked = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.status.in_(_WAITING),
                    or_(JobRow.celery_task_id.is_(None), JobRow.celery_task_id == celery_task_id),
                )
                .values(deferred_at=now, celery_task_id=celery_task_id)
            )
            return bool(cast(CursorResult[Any], marked).rowcount)

    def skip_if_stopped(self, job_id: int, now: datetime) -> bool:
        """Skip a waiting job whose run is being stopped (held, or stopped by its On Error policy)."""
        with self.transaction() as s:
            row = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.status.in_(_WAITING),
                    exists().where(RunRow.id == JobRow.run_id, RunRow.stop_reason.is_not(None)),
                )
                .values(status=JobStatus.SKIPPED, finished_at=now)
                .returning(JobRow.run_id, JobRow.package_name, JobRow.task, JobRow.run_order)
            ).one_or_none()
            if row is None:
                return False
            line = log.job_line(
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                job_id,
                row,
                message="skipped: the run was stopped",
            )
            log.write(s, [line])
            return True

    def end_attempt(
        self,
        job: ClaimedJob,
        now: datetime,
        outcome: AttemptStatus,
        *,
        error: str | None = None,
        traceback: str | None = None,
        planned_delay_s: float | None = None,
    ) -> None:
        """Close the attempt's log entry and move the job on (DONE, RETRYING or ERROR).

        Outages are retried (``outages.retry_write``); ``StoreUnavailable`` once the time is up. An
        attempt that is no longer running (the job was aborted, recovered, or taken over by its message
        delivered again) ends nothing: that is logged as an error, with the job's status.
        """
        params = statements.end_params(job, now, error, traceback, planned_delay_s)
        events: list[Event] = []
        if outcome is not AttemptStatus.DONE:
            event = Event(LogKind.ATTEMPT, outcome, now, job.package, job.run_id, job.job_id, job.task)
            events.append(dataclasses.replace(event, log_id=job.log_id, error=error))
        tries: list[bool] = []

        def end(retried: bool) -> bool:
            tries.append(retried)
            return self.writer.end(outcome, params, events)

        what = f"ending attempt {job.log_id} of job {job.job_id} as {outcome}"
        if outages.retry_write(end, self.retry_s, what):
            return
        if len(tries) > 1:
            # A try whose connection was lost after its commit: the attempt is ended already.
            logger.warning("jqm: %s: already ended by an earlier try", what)
            return
        status = self.writer.job_status(job.job_id)
        logger.error(
            "jqm: %s: the attempt was no longer running (the job is %s); its outcome was not written",
            what,
            status or "gone",
        )

    # -- a job handed over by a worker of the previous version ---------------------------------

    def start_handed_over(
        self, job: ClaimedJob, worker: str, celery_task_id: str, now: datetime
    ) -> JobStatus | None:
        """Check and record the start of a job that a worker of the previous version claimed for it.

        That version ended a job and claimed the next in one statement ("the hand-over"), so the next
        job's message may arrive RUNNING, with no worker. It is checked as a claim would check it:
        RUNNING: the job is still this message's and its run goes on; the attempt now names ``worker`` and
        starts at ``now``. SKIPPED: the run was stopped meanwhile; the attempt, which never started, leaves
        the log and the job is skipped. None: the job is no longer this message's (recovered meanwhile).
        """
        with self.transaction() as s:
            row = s.execute(
                select(JobRow, RunRow.stop_reason)
                .join(RunRow, RunRow.id == JobRow.run_id)
                .where(
                    JobRow.id == job.job_id,
                    JobRow.status == JobStatus.RUNNING,
                    JobRow.celery_task_id == celery_task_id,
                    JobRow.worker.is_(None),
                )
                .with_for_update(of=JobRow)
            ).one_or_none()
            if row is None:
                return None
            found, stop_reason = row
            if stop_reason is None:
                found.worker = worker
                s.execute(
                    update(LogEntryRow)
                    .where(LogEntryRow.id == job.log_id, LogEntryRow.status == AttemptStatus.RUNNING)
                    .values(worker=worker, started_at=now)
                )
                return JobStatus.RUNNING
            found.status = JobStatus.SKIPPED
            found.finished_at = now
            found.attempts -= 1
            s.execute(
                delete(LogEntryRow).where(
                    LogEntryRow.id == job.log_id, LogEntryRow.status == AttemptStatus.RUNNING
                )
            )
            line = log.job_line(
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                found.id,
                found,
                message=f"skipped: {stop_reason}",
            )
            log.write(s, [line])
            return JobStatus.SKIPPED

    def fail_job(self, job_id: int, now: datetime, error: str) -> bool:
        """Settle a job whose wrapper died as ERROR (its running attempt too); False if already settled."""
        with self.transaction() as s:
            settled = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.not_in(_FINISHED))
                .values(status=JobStatus.ERROR, finished_at=now, error=error)
                .returning(JobRow.run_id, JobRow.package_name, JobRow.task)
            ).one_or_none()
            if settled is None:
                return False
            event = Event(LogKind.ATTEMPT, AttemptStatus.ERROR, now, settled.package_name, settled.run_id)
            log.publish(s, [dataclasses.replace(event, job_id=job_id, task=settled.task, error=error)])
            s.execute(statements.close_running_attempt(job_id, AttemptStatus.ERROR, now, error))
            return True
