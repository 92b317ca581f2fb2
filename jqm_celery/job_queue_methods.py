"""The manager's methods for the job queue: queues, stand-alone jobs, their controls, clean, the audit trail.

``JobQueueManager`` inherits them; each delegates to ``jobqueue.JobQueue``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from jqm_celery.definitions import RetryPolicy
from jqm_celery.jobqueue import JobQueue, JobSpec
from jqm_celery.queue_records import AuditEntry, Cleaned, QueueState
from jqm_celery.records import Job
from jqm_celery.statuses import JobStatus


class JobQueueMethods:
    """Queues and stand-alone jobs (controls shared with package jobs), as methods of the manager."""

    _job_queue: JobQueue

    def define_queue(self, name: str, pool_size: int, *, actor: str | None = None) -> QueueState:
        """Define (or resize) a named queue; ``jqm worker`` runs ``pool_size`` of its jobs at once."""
        return self._job_queue.define_queue(name, pool_size, actor=actor)

    def queues(self) -> list[QueueState]:
        return self._job_queue.queues()

    def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        description: str = "",
        retry: RetryPolicy | None = None,
        delay: timedelta | None = None,
        soft_time_limit: timedelta | None = None,
        time_limit: timedelta | None = None,
    ) -> Job:
        """Add a stand-alone job to a queue; ``delay`` holds it back, ``retry`` retries it with backoff."""
        return self._job_queue.enqueue(
            task,
            args,
            kwargs,
            queue=queue,
            description=description,
            retry=retry,
            delay=delay,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )

    def enqueue_many(
        self,
        task: str,
        jobs: Sequence[JobSpec],
        *,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        delay: timedelta | None = None,
        soft_time_limit: timedelta | None = None,
        time_limit: timedelta | None = None,
    ) -> list[Job]:
        """Many stand-alone jobs of one task, stored in one transaction."""
        return self._job_queue.enqueue_many(
            task,
            jobs,
            queue=queue,
            retry=retry,
            delay=delay,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )

    def job(self, job_id: int) -> Job:
        """A job (stand-alone or of a run) with its attempts."""
        return self._job_queue.job(job_id)

    def jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | str | None = None,
        stand_alone: bool = True,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs, newest first (stand-alone ones only unless ``stand_alone=False``)."""
        return self._job_queue.jobs(queue=queue, status=status, stand_alone=stand_alone, limit=limit)

    def cancel(self, job_id: int, *, actor: str | None = None) -> Job:
        """A QUEUED, DELAYED or RETRYING job never runs."""
        return self._job_queue.cancel(job_id, actor=actor)

    def abort(self, job_id: int, *, actor: str | None = None) -> Job:
        """A RUNNING job is terminated on whichever worker runs it."""
        return self._job_queue.abort(job_id, actor=actor)

    def requeue(self, job_id: int, *, actor: str | None = None) -> Job:
        """A DONE, CANCELLED, ABORTED or ERROR stand-alone job is added to its queue again."""
        return self._job_queue.requeue(job_id, actor=actor)

    def clean(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Cleaned:
        """Delete finished stand-alone jobs older than ``older_than`` and their log entries, in batches."""
        return self._job_queue.clean(older_than, actor=actor, progress=progress)

    def audit(self, *, package: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """Who changed what and when, oldest first."""
        return self._job_queue.audit(package=package, limit=limit)
