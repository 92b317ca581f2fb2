"""Plain data passed between the store, the compiler and the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jqm_celery.statuses import OnError


@dataclass(frozen=True)
class JobPlan:
    """What the compiler needs to know of one job."""

    id: int
    task: str
    run_order: int
    queue: str | None
    soft_time_limit_s: float | None
    time_limit_s: float | None
    #: The entry's arguments, shown with the job in Flower and worker logs (the job reads them when it
    #: starts, from the store).
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    """A run ready to be compiled into a canvas: its jobs, in entry order."""

    run_id: int
    package: str
    jobs: tuple[JobPlan, ...]

    def stages(self) -> list[tuple[JobPlan, ...]]:
        """The jobs grouped by run order, lowest first."""
        by_order: dict[int, list[JobPlan]] = {}
        for job in self.jobs:
            by_order.setdefault(job.run_order, []).append(job)
        return [tuple(by_order[order]) for order in sorted(by_order)]


@dataclass(frozen=True)
class ClaimedJob:
    """A job whose attempt has started on this worker."""

    job_id: int
    run_id: int | None
    log_id: int
    package: str | None
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    run_order: int
    retry: int
    retry_policy: dict[str, Any]


@dataclass(frozen=True)
class RunClosed:
    """What closing a run changed, for the runtime to act on (notifications, a queued next run)."""

    run_id: int
    package: str
    status: str
    package_stopped: bool
    #: The package's next run, started by this end (QUEUED → RUNNING), for the runtime to send.
    next_run: RunPlan | None


def error_policy(on_error: OnError) -> tuple[bool, bool]:
    """(skip the rest of the run now, stop the package) for a job that has failed for good."""
    return on_error is OnError.STOP, on_error is not OnError.CONTINUE
