"""Pausing and resuming queues: the store's side.

A paused queue's jobs are refused by the claim (``statements.claim``), so every worker honours the pause,
one that starts later too. A refused job stays waiting, marked ``deferred_at`` (``defer_if_paused``);
resuming the queue gives each such job a new message id and hands its message back to be sent again, so
the refused message, should a broker deliver it once more, is refused by the claim.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jqm_celery.queue_records import AuditAction
from jqm_celery.statuses import WAITING_JOB, JobStatus
from jqm_celery.store.audit import record
from jqm_celery.store.job_records import JobMessage, message_of
from jqm_celery.store.jobs import unknown_queue
from jqm_celery.store.models import JobRow
from jqm_celery.store.queue_models import QueueRow
from jqm_celery.store.store import Store

_WAITING = [s.value for s in WAITING_JOB]


class QueueControlStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def pause(self, name: str, now: datetime, actor: str, action: AuditAction, detail: str = "") -> bool:
        """Pause the queue (audited as ``action``); False if it was paused already."""
        with self.store.transaction() as s:
            row = self._queue(s, name)
            was_paused = row.paused
            row.paused = True
            row.updated_at = now
            record(s, now, actor, action, f"queue '{name}'", detail=detail)
            return not was_paused

    def resume(self, name: str, now: datetime, actor: str, new_id: Callable[[], str]) -> list[JobMessage]:
        """Resume the queue; the messages of its jobs that were refused meanwhile, to send again."""
        with self.store.transaction() as s:
            row = self._queue(s, name)
            row.paused = False
            row.updated_at = now
            deferred = s.scalars(
                select(JobRow)
                .where(JobRow.queue == name, JobRow.deferred_at.is_not(None))
                .order_by(JobRow.id)
                .with_for_update()
            ).all()
            messages = []
            for job in deferred:
                job.deferred_at = None
                if job.status in _WAITING:
                    job.celery_task_id = new_id()
                    messages.append(message_of(job))
            record(
                s,
                now,
                actor,
                AuditAction.RESUME_QUEUE,
                f"queue '{name}'",
                detail=f"{len(messages)} waiting job(s) sent again",
            )
            return messages

    def running_jobs(self, name: str) -> list[int]:
        with self.store.transaction() as s:
            return list(
                s.scalars(
                    select(JobRow.id)
                    .where(JobRow.status == JobStatus.RUNNING, JobRow.queue == name)
                    .order_by(JobRow.id)
                )
            )

    def _queue(self, s: Session, name: str) -> QueueRow:
        row = s.get(QueueRow, name, with_for_update=True)
        if row is None:
            names = list(s.scalars(select(QueueRow.name)))
            raise unknown_queue(name, names)
        return row


__all__ = ["QueueControlStore"]
