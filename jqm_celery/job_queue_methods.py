"""The manager's methods for the job queue: queues, stand-alone jobs, their controls, clean, the audit trail.

``JobQueueManager`` inherits them; each delegates to ``jobqueue.JobQueue``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from jqm_celery.definitions import RetryPolicy
from jqm_celery.jobqueue import JobQueue, JobSpec
from jqm_celery.paging import window
from jqm_celery.queue_control import QueueControl
from jqm_celery.queue_records import AuditEntry, Cleaned, CleanedRuns, QueueState
from jqm_celery.records import Job
from jqm_celery.retention import RunRetention
from jqm_celery.statuses import JobStatus


class JobQueueMethods:
    """Queues and stand-alone jobs (controls shared with package jobs), as methods of the manager."""

    _job_queue: JobQueue
    queue_control: QueueControl
    retention: RunRetention

    def define_queue(self, name: str, pool_size: int, *, actor: str | None = None) -> QueueState:
        """Define (or resize) a named queue; ``jqm worker`` runs ``pool_size`` of its jobs at once."""
        return self._job_queue.define_queue(name, pool_size, actor=actor)

    def queues(self) -> list[QueueState]:
        """Every queue: pool size, paused or not, jobs by status, and the live workers consuming it."""
        return self.queue_control.queues()

    def pause_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """No new job of the queue starts on any worker until it is resumed; running jobs finish."""
        return self.queue_control.pause(name, actor=actor)

    def resume_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """Jobs of a paused queue start again, those that waited first."""
        return self.queue_control.resume(name, actor=actor)

    def shut_down_queue(self, name: str, *, actor: str | None = None) -> QueueState:
        """Pause the queue and abort its running jobs."""
        return self.queue_control.shut_down(name, actor=actor)

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
        worker: str | None = None,
        package: str | None = None,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Job]:
        """Jobs, newest first (stand-alone ones only unless ``stand_alone=False``); ``before_id`` (the
        last id of the page before) pages back, ``since`` / ``until`` keep jobs created in that range;
        filtered by the worker that ran them and their package too."""
        return self._job_queue.jobs(
            queue=queue,
            status=status,
            stand_alone=stand_alone,
            limit=limit,
            worker=worker,
            package=package,
            window=window("jobs", before_id, since, until),
        )

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

    def clean_runs(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CleanedRuns:
        """Delete finished package runs older than ``older_than``, their jobs and log entries, in batches."""
        return self.retention.clean_runs(older_than, actor=actor, progress=progress)

    def audit(
        self,
        *,
        package: str | None = None,
        limit: int = 200,
        before_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEntry]:
        """Who changed what and when, oldest first; the newest ``limit`` entries before ``before_id``."""
        return self._job_queue.audit(
            package=package, limit=limit, window=window("audit", before_id, since, until)
        )
