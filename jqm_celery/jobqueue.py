"""The Mendix-style job queue: named queues with a pool size, stand-alone jobs, and the controls every job
shares — cancel, abort, re-add (requeue), clean — plus cancelling a whole run and the audit trail.

``JobQueueManager`` delegates here; the store side is ``store/jobs.py``, the worker side (recovery after a
restart) is ``recovery.py``.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from celery import Celery

from jqm_celery.batches import CLEAN_BATCH, cut_off, delete_in_batches
from jqm_celery.clock import Clock
from jqm_celery.definitions import NO_RETRY, RetryPolicy
from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.job_sending import JobSender
from jqm_celery.paging import NEWEST, Window
from jqm_celery.queue_records import AuditAction, AuditEntry, Cleaned, QueueState
from jqm_celery.records import Job, Run
from jqm_celery.runtime import Runtime
from jqm_celery.statuses import JobStatus
from jqm_celery.storable import check_json, check_text
from jqm_celery.store import Store
from jqm_celery.store.audit import AuditTrail
from jqm_celery.store.jobs import JobMessage, JobStore, NewJob, unknown_queue

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$")
#: How long, in seconds, a process trusts the queue names it has read. A name it has not seen is read
#: again at once, so a queue defined elsewhere is usable immediately; only a queue removed from the store
#: by hand stays accepted this long.
QUEUE_NAMES_TTL_S = 10.0
_T = TypeVar("_T")


def default_actor() -> str:
    """Who is making a change when the caller does not say: the operating-system user."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@dataclass(frozen=True)
class JobSpec:
    """One job for ``enqueue_many``: the task's arguments (everything else is shared)."""

    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] | None = None
    description: str = ""


class JobQueue:
    def __init__(self, app: Celery, store: Store, runtime: Runtime, clock: Clock) -> None:
        self.app = app
        self.clock = clock
        self.runtime = runtime
        self.jobs_store = JobStore(store)
        self.sender = JobSender(app, runtime, self.jobs_store, clock)
        self.audit_trail = AuditTrail(store)
        self._queue_names: frozenset[str] = frozenset()
        self._queue_names_read_at = -math.inf

    # -- queues -----------------------------------------------------------------------------

    def define_queue(self, name: str, pool_size: int, *, actor: str | None = None) -> QueueState:
        if not isinstance(name, str) or not _QUEUE_NAME.match(name):
            raise ValidationError(
                f"queue name {name!r} is not valid; use letters, digits and . _ : - (e.g. 'reports')"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValidationError(
                f"queue '{name}': pool_size must be a whole number ≥ 1, got {pool_size!r}; "
                "it is how many jobs of this queue run at once on a worker"
            )
        self.jobs_store.define_queue(name, pool_size, self.clock.now(), actor or default_actor())
        self._queue_names |= {name}
        return next(q for q in self.jobs_store.queues() if q.name == name)

    def queues(self) -> list[QueueState]:
        return self.jobs_store.queues()

    def default_queue(self) -> str:
        return str(self.app.conf.task_default_queue)

    # -- enqueue ----------------------------------------------------------------------------

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
        """Store a stand-alone job and send it to its queue (the app's default queue if none is given)."""
        (job,) = self.enqueue_many(
            task,
            [JobSpec(args, kwargs, description)],
            queue=queue,
            retry=retry,
            delay=delay,
            soft_time_limit=soft_time_limit,
            time_limit=time_limit,
        )
        return job

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
        """Many jobs of one task in one transaction, then one message each (in order)."""
        self._check_task(task)
        queue = self._check_queue(queue)
        retry = NO_RETRY if retry is None else retry
        if not isinstance(retry, RetryPolicy):
            raise ValidationError(f"job '{task}': retry must be a RetryPolicy, got {type(retry).__name__}")
        delay_s = _seconds(f"job '{task}'", "delay", delay, allow_zero=True)
        soft_s = _seconds(f"job '{task}'", "soft_time_limit", soft_time_limit)
        hard_s = _seconds(f"job '{task}'", "time_limit", time_limit)
        if soft_s is not None and hard_s is not None and soft_s >= hard_s:
            raise ValidationError(
                f"job '{task}': soft_time_limit ({soft_time_limit}) must be below time_limit ({time_limit})"
            )
        for spec in jobs:
            check_text(f"job '{task}'", "description", spec.description)
        now = self.clock.now()
        not_before = now + timedelta(seconds=delay_s) if delay_s else None
        new = [
            NewJob(
                task=task,
                args=_json_list(task, spec.args),
                kwargs=_json_dict(task, spec.kwargs),
                queue=queue,
                retry_policy=retry.to_dict(),
                max_retries=retry.max_retries,
                soft_time_limit_s=soft_s,
                time_limit_s=hard_s,
                description=spec.description,
                celery_task_id=str(uuid.uuid4()),
                not_before=not_before,
            )
            for spec in jobs
        ]
        ids = self.jobs_store.add_jobs(new, now)
        messages = [
            JobMessage(
                job_id,
                None,
                None,
                task,
                0,
                queue,
                soft_s,
                hard_s,
                spec.celery_task_id,
                tuple(spec.args),
                dict(spec.kwargs),
            )
            for job_id, spec in zip(ids, new, strict=True)
        ]
        self.sender.send_all(messages, countdown_s=delay_s or None)
        return [self._snapshot(job_id, spec, now) for job_id, spec in zip(ids, new, strict=True)]

    # -- reading ----------------------------------------------------------------------------

    def job(self, job_id: int) -> Job:
        return self.jobs_store.job(job_id)

    def jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | str | None = None,
        stand_alone: bool = True,
        limit: int = 100,
        worker: str | None = None,
        package: str | None = None,
        window: Window = NEWEST,
    ) -> list[Job]:
        return self.jobs_store.jobs(
            queue=queue,
            status=None if status is None else job_status(status),
            stand_alone=stand_alone,
            limit=limit,
            worker=worker,
            package=package,
            window=window,
        )

    def audit(
        self, *, package: str | None = None, limit: int = 200, window: Window = NEWEST
    ) -> list[AuditEntry]:
        """The audit trail, oldest first."""
        return self.audit_trail.entries(package=package, limit=limit, window=window)[::-1]

    def record(
        self,
        actor: str | None,
        action: AuditAction,
        target: str,
        *,
        package: str | None = None,
        detail: str = "",
    ) -> None:
        self.audit_trail.record(
            self.clock.now(), actor or default_actor(), action, target, package=package, detail=detail
        )

    # -- controls ---------------------------------------------------------------------------

    def cancel(self, job_id: int, *, actor: str | None = None) -> Job:
        """A QUEUED, DELAYED or RETRYING job never runs."""
        celery_task_id = self.jobs_store.cancel(job_id, self.clock.now(), actor or default_actor())
        if celery_task_id:
            self.sender.revoke(celery_task_id, terminate=False)
        return self.job(job_id)

    def abort(self, job_id: int, *, actor: str | None = None) -> Job:
        """A RUNNING job is terminated on whichever worker runs it (a broadcast revoke)."""
        actor = actor or default_actor()
        aborted = self.jobs_store.abort(job_id, self.clock.now(), actor)
        self.sender.terminate([aborted], actor)
        return self.job(job_id)

    def requeue(self, job_id: int, *, actor: str | None = None) -> Job:
        """A DONE, CANCELLED, ABORTED or ERROR stand-alone job runs again (the seed's re-add); returns the
        job as re-added (``QUEUED``), read before its message is sent, which a worker may take at once."""
        message = self.jobs_store.requeue(
            job_id, self.clock.now(), actor or default_actor(), str(uuid.uuid4())
        )
        requeued = self.job(job_id)
        self.sender.send_all([message], countdown_s=None)
        return requeued

    def cancel_run(self, run_id: int, *, actor: str | None = None) -> Run:
        """Queued jobs of the run never start, running ones are aborted; the run ends STOPPED."""
        actor = actor or default_actor()
        cancelled = self.jobs_store.cancel_run(run_id, self.clock.now(), actor)
        for job in cancelled.aborted:
            if job.celery_task_id:
                self.sender.revoke(job.celery_task_id, terminate=True)
        if cancelled.next_run is not None:
            self.runtime.dispatch(cancelled.next_run)
        return self.runtime_run(run_id)

    def runtime_run(self, run_id: int) -> Run:
        return self.runtime.store.run(run_id)

    def clean(
        self,
        older_than: timedelta,
        *,
        actor: str | None = None,
        batch_size: int = CLEAN_BATCH,
        progress: Callable[[int, int], None] | None = None,
    ) -> Cleaned:
        """Delete finished stand-alone jobs older than ``older_than`` and their log entries, in batches.

        ``progress(jobs deleted so far, jobs to delete)`` is called after each batch.
        """
        before = cut_off("clean", self.clock.now(), older_than, batch_size, "timedelta(days=30)")
        jobs, entries = delete_in_batches(
            self.jobs_store.cleanable(before),
            lambda: self.jobs_store.clean_batch(before, batch_size),
            progress,
        )
        self.record(
            actor,
            AuditAction.CLEAN,
            "jobs",
            detail=f"finished before {before:%Y-%m-%d %H:%M:%S} UTC: {jobs} job(s), {entries} log entries",
        )
        return Cleaned(jobs, entries)

    # -- sending ----------------------------------------------------------------------------

    def send(self, message: JobMessage, *, countdown_s: float | None = None, producer: Any = None) -> None:
        """Send one job's message under its pre-assigned task id (so cancel and abort can revoke it)."""
        self.sender.send(message, countdown_s=countdown_s, producer=producer)

    # -- validation -------------------------------------------------------------------------

    def _check_task(self, task: str) -> None:
        if not isinstance(task, str) or not task.strip():
            raise ValidationError(f"job: task must be a registered Celery task name, got {task!r}")
        if task in self.app.tasks:
            return
        self.app.loader.import_default_modules()
        if task not in self.app.tasks:
            registered = [n for n in self.app.tasks if not n.startswith(("celery.", "jqm."))]
            raise ValidationError(
                f"job: task '{task}' is not registered{did_you_mean(task, registered)}; "
                "import its module in your Celery app"
            )

    def _check_queue(self, queue: str | None) -> str:
        default = self.default_queue()
        if queue is None or queue == default:
            return default
        fresh = time.monotonic() - self._queue_names_read_at < QUEUE_NAMES_TTL_S
        if fresh and queue in self._queue_names:
            return queue
        self._queue_names = frozenset(self.jobs_store.queue_sizes())
        self._queue_names_read_at = time.monotonic()
        if queue not in self._queue_names:
            raise unknown_queue(queue, [*sorted(self._queue_names), default])
        return queue

    def _snapshot(self, job_id: int, spec: NewJob, now: Any) -> Job:
        return Job(
            id=job_id,
            run_id=None,
            package=None,
            task=spec.task,
            run_order=0,
            queue=spec.queue,
            status=JobStatus.DELAYED if spec.not_before else JobStatus.QUEUED,
            retry=0,
            max_retries=spec.max_retries,
            current_delay=timedelta(0),
            worker=None,
            celery_task_id=spec.celery_task_id,
            error=None,
            description=spec.description,
            created_at=now,
            started_at=None,
            finished_at=None,
        )


def job_status(value: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"job status {value!r} is not valid; choose one of {', '.join(s.value for s in JobStatus)}"
        ) from None


def _seconds(owner: str, label: str, value: timedelta | None, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise ValidationError(
            f"{owner}: {label} must be a timedelta, got {value!r}; e.g. timedelta(minutes=5)"
        )
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        raise ValidationError(
            f"{owner}: {label} must be {'≥' if allow_zero else '>'} 0, got {value.total_seconds():g} s; "
            f"e.g. {label}=timedelta(minutes=5)"
        )
    return value.total_seconds()


def _json_list(task: str, args: Sequence[Any]) -> list[Any]:
    if not isinstance(args, list | tuple):
        raise ValidationError(f"job '{task}': args must be a list, got {type(args).__name__}; e.g. args=[42]")
    return _json(task, "args", list(args))


def _json_dict(task: str, kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValidationError(f"job '{task}': kwargs must be a dict with string keys, got {kwargs!r}")
    return _json(task, "kwargs", dict(kwargs))


def _json(task: str, label: str, value: _T) -> _T:
    check_json(f"job '{task}'", label, value)
    return value
