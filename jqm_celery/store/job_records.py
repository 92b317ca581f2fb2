"""What the job store hands back and takes: plain values, no rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jqm_celery.plans import RunPlan
from jqm_celery.store.models import JobRow


@dataclass(frozen=True)
class NewJob:
    """A stand-alone job about to be stored; ``celery_task_id`` names the one message that may run it."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    retry_policy: dict[str, Any]
    max_retries: int
    soft_time_limit_s: float | None
    time_limit_s: float | None
    description: str
    celery_task_id: str
    not_before: datetime | None


@dataclass(frozen=True)
class JobMessage:
    """What the sender needs to send one job's message."""

    job_id: int
    run_id: int | None
    package: str | None
    task: str
    run_order: int
    queue: str | None
    soft_time_limit_s: float | None
    time_limit_s: float | None
    celery_task_id: str
    #: The task's arguments, shown in Flower and worker logs (the job reads them from the store).
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Aborted:
    job_id: int
    run_id: int | None
    task: str
    celery_task_id: str | None
    run_order: int = 0


@dataclass(frozen=True)
class CancelledRun:
    """What cancelling a run did: the jobs it aborted (to terminate), the package's next run it started."""

    aborted: list[Aborted]
    next_run: RunPlan | None


@dataclass(frozen=True)
class RunningJob:
    """A RUNNING job as the reconciler sees it, with the start of its current attempt."""

    job_id: int
    run_id: int | None
    run_order: int
    task: str
    worker: str | None
    celery_task_id: str | None
    attempt_started_at: datetime | None
    time_limit_s: float | None
    interruptions: int


def message_of(row: JobRow) -> JobMessage:
    return JobMessage(
        job_id=row.id,
        run_id=row.run_id,
        package=row.package_name,
        task=row.task,
        run_order=row.run_order,
        queue=row.queue,
        soft_time_limit_s=row.soft_time_limit_s,
        time_limit_s=row.time_limit_s,
        celery_task_id=str(row.celery_task_id),
        args=tuple(row.args or ()),
        kwargs=dict(row.kwargs or {}),
    )


@dataclass(frozen=True)
class LostJob:
    """A waiting job whose message looks gone, as the reconciler found it (see ``store/lost_jobs.py``)."""

    job_id: int
    run_id: int | None
    task: str
    queue: str
    #: The message id the job names now; a re-send replaces it only if no one else has meanwhile.
    celery_task_id: str | None
    #: Since when it should have started (enqueued, due, retry due, run order reached, last sent again).
    due_at: datetime


@dataclass(frozen=True)
class Lost:
    """What the reconciler found stuck: waiting jobs to send again, and runs to close."""

    jobs: list[LostJob] = field(default_factory=list)
    #: RUNNING runs whose jobs have all finished long ago, but which no closing step ended.
    unclosed_runs: list[int] = field(default_factory=list)
