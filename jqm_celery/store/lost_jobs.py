"""Recovery's side of the store for jobs whose message is gone: waiting, due long ago, and nothing moves.

A waiting job (QUEUED, DELAYED, RETRYING) has a message in the broker or in a worker's hands. That
message can be lost while every worker stays up: a broker restarted without persistence, a worker killed
after receiving it but before starting it (the broker gives it back only after its visibility timeout).
A job counts as lost when it has been due for ``lost_after`` and, for as long, nothing has moved in its
queue or its run: no job of either is running or has finished since. A long backlog that workers are
working through is therefore never lost, however long a job waits in it; nor is a job of a paused queue,
of a queue no live worker consumes, of a run being stopped (hold, On Error STOP, cancel: its waiting
jobs are skipped), or of a run beat has not yet recorded as sent (beat recovers those). In a package run
only the jobs of the first unfinished run order count: the later ones are sent when it has settled.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from jqm_celery.statuses import FINISHED_JOB, WAITING_JOB, JobStatus, LogKind, RunStatus
from jqm_celery.store import log
from jqm_celery.store.beat_models import FireRow
from jqm_celery.store.job_records import JobMessage, Lost, LostJob, message_of
from jqm_celery.store.models import JobRow, LogEntryRow, RunRow
from jqm_celery.store.queue_models import QueueRow
from jqm_celery.store.store import Store

_WAITING = [s.value for s in WAITING_JOB]
_FINISHED = [s.value for s in FINISHED_JOB]


class LostJobStore:
    store: Store

    def lost(
        self, now: datetime, lost_after: timedelta, consumed: Collection[str], default_queue: str, limit: int
    ) -> Lost:
        """Waiting jobs lost as the module's docstring says (at most ``limit``), in the queues named in
        ``consumed`` (those live workers consume); a job with no queue is in ``default_queue``. Also the
        RUNNING runs whose jobs have all finished before ``now - lost_after``, never closed."""
        cutoff = now - lost_after
        with self.store.transaction() as s:
            waiting_queues = set(
                s.scalars(select(JobRow.queue).where(JobRow.status.in_(_WAITING)).distinct())
            )
            named = {default_queue if q is None else q for q in waiting_queues} & set(consumed)
            paused = set(s.scalars(select(QueueRow.name).where(QueueRow.paused, QueueRow.name.in_(named))))
            moving = {
                default_queue if q is None else q
                for q in s.scalars(
                    select(JobRow.queue)
                    .where(_in_queues(named, default_queue), _moved_since(JobRow, cutoff, now))
                    .distinct()
                )
            }
            still = named - paused - moving
            rows = (
                s.execute(_candidates(still, default_queue, cutoff, now).limit(limit)).all() if still else []
            )
            due = _last_activity(s, [r.id for r in rows], now)
            unclosed = list(s.scalars(_unclosed_runs(cutoff, now)))
        jobs = []
        for r in rows:
            due_at = max(t for t in (r.created_at, r.not_before, r.run_started_at, due.get(r.id)) if t)
            if due_at < cutoff:
                queue = r.queue or default_queue
                jobs.append(LostJob(r.id, r.run_id, r.task, queue, r.celery_task_id, due_at))
        return Lost(jobs, unclosed)

    def send_lost_again(self, job: LostJob, now: datetime, reason: str, new_id: str) -> JobMessage | None:
        """Name a new message id on a lost job, with a ``JOB_STALE`` log entry; the message to send.

        None if the job moved meanwhile (claimed, finished, or sent again by another reconciler): the
        update only matches the job still waiting under the message id it was found with.
        """
        named = (
            JobRow.celery_task_id.is_(None)
            if job.celery_task_id is None
            else JobRow.celery_task_id == job.celery_task_id
        )
        with self.store.transaction() as s:
            row = s.execute(
                update(JobRow)
                .where(JobRow.id == job.job_id, JobRow.status.in_(_WAITING), named)
                .values(celery_task_id=new_id, deferred_at=None)
                .returning(JobRow)
            ).scalar_one_or_none()
            if row is None:
                return None
            line = log.job_line(
                LogKind.JOB_STALE, row.status, now, row.id, row, message="sent again", error=reason
            )
            log.write(s, [line])
            return message_of(row)


def _in_queues(names: Collection[str], default_queue: str) -> ColumnElement[bool]:
    matches = JobRow.queue.in_(list(names))
    return or_(matches, JobRow.queue.is_(None)) if default_queue in names else matches


def _moved_since(job: Any, cutoff: datetime, now: datetime) -> ColumnElement[bool]:
    # A time ahead of the database's clock (written by a client whose clock runs ahead) is no sign of
    # movement: counting it would keep its queue "moving", and its lost jobs unsent, until that time.
    return or_(job.status == JobStatus.RUNNING, job.finished_at.between(cutoff, now))


def _candidates(queues: Collection[str], default_queue: str, cutoff: datetime, now: datetime) -> Any:
    """Waiting jobs of ``queues`` due before ``cutoff`` as far as their row tells, not in a moving run."""
    other = aliased(JobRow, name="other_job")
    standalone = and_(
        JobRow.run_id.is_(None),
        JobRow.created_at < cutoff,
        or_(JobRow.not_before.is_(None), JobRow.not_before < cutoff),
    )
    first_unfinished = ~exists().where(
        other.run_id == JobRow.run_id, other.run_order < JobRow.run_order, other.status.not_in(_FINISHED)
    )
    run_still = ~exists().where(other.run_id == JobRow.run_id, _moved_since(other, cutoff, now))
    # A run beat fired but has not recorded as sent is beat's to recover (``schedule.recover_unsent``).
    unsent = exists().where(FireRow.run_id == JobRow.run_id, FireRow.sent_at.is_(None))
    in_run = and_(
        RunRow.status == RunStatus.RUNNING, RunRow.stop_reason.is_(None), first_unfinished, run_still, ~unsent
    )
    recently_logged = exists().where(
        LogEntryRow.job_id == JobRow.id,
        func.coalesce(LogEntryRow.finished_at, LogEntryRow.started_at).between(cutoff, now),
    )
    return (
        select(
            JobRow.id,
            JobRow.run_id,
            JobRow.task,
            JobRow.queue,
            JobRow.celery_task_id,
            JobRow.created_at,
            JobRow.not_before,
            RunRow.started_at.label("run_started_at"),
        )
        .outerjoin(RunRow, RunRow.id == JobRow.run_id)
        .where(
            JobRow.status.in_(_WAITING),
            _in_queues(queues, default_queue),
            or_(standalone, in_run),
            ~recently_logged,
        )
        .order_by(JobRow.id)
    )


def _last_activity(s: Any, job_ids: list[int], now: datetime) -> dict[int, datetime]:
    """For each job, the last time its log shows it moving: an attempt's start or end (a failed attempt's
    planned retry delay added), or the last time it was sent again."""
    last: dict[int, datetime] = {}
    if not job_ids:
        return last
    entries = s.execute(
        select(
            LogEntryRow.job_id, LogEntryRow.started_at, LogEntryRow.finished_at, LogEntryRow.planned_delay_s
        ).where(LogEntryRow.job_id.in_(job_ids))
    )
    for job_id, started_at, finished_at, delay_s in entries:
        if (finished_at or started_at) > now:
            continue  # ahead of the database's clock: no sign of movement (see _moved_since)
        at = (finished_at or started_at) + timedelta(seconds=delay_s or 0.0)
        last[job_id] = max(last.get(job_id, at), at)
    return last


def _unclosed_runs(cutoff: datetime, now: datetime) -> Any:
    job = aliased(JobRow, name="run_job")
    return (
        select(RunRow.id)
        .where(
            RunRow.status == RunStatus.RUNNING,
            RunRow.started_at < cutoff,
            ~exists().where(
                job.run_id == RunRow.id,
                or_(job.status.not_in(_FINISHED), job.finished_at.between(cutoff, now)),
            ),
        )
        .order_by(RunRow.id)
    )
