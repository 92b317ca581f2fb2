"""What the store hands back: read-only snapshots of packages, runs, jobs and log entries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jqm_celery.definitions import Package
from jqm_celery.errors import JQMError
from jqm_celery.statuses import JobStatus, LogKind, PackageStatus, RunStatus


@dataclass(frozen=True)
class PackageState:
    """A stored package: its definition and where it stands in its lifecycle."""

    definition: Package
    status: PackageStatus
    version: int
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    last_run: RunSummary | None = None

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class RunSummary:
    id: int
    status: RunStatus
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class LogEntry:
    """One persisted record: an attempt of a job, or an event of a run or package."""

    id: int
    kind: LogKind
    status: str
    package: str | None
    run_id: int | None
    job_id: int | None
    entry_task: str | None
    run_order: int | None
    celery_task_id: str | None
    worker: str | None
    retry: int
    planned_delay: timedelta | None
    error: str | None
    traceback: str | None
    message: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Job:
    """One execution of one entry inside a run (or a stand-alone job)."""

    id: int
    run_id: int | None
    package: str | None
    task: str
    run_order: int
    queue: str | None
    status: JobStatus
    retry: int
    max_retries: int
    current_delay: timedelta
    worker: str | None
    celery_task_id: str | None
    error: str | None
    description: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: tuple[LogEntry, ...] = ()
    #: A DELAYED job does not start before this.
    not_before: datetime | None = None


class RunTimeoutError(JQMError):
    """Raised by ``Run.wait`` when the run has not finished within the timeout."""


@dataclass(frozen=True)
class Run:
    """One execution of a package. ``wait()`` returns the finished run."""

    id: int
    package: str
    status: RunStatus
    trigger: str
    stop_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    jobs: tuple[Job, ...] = ()
    _reload: Callable[[int], Run] | None = field(default=None, repr=False, compare=False)
    #: Reads only the run's status, for ``wait`` to poll.
    _status: Callable[[int], RunStatus] | None = field(default=None, repr=False, compare=False)

    @property
    def attempts(self) -> tuple[LogEntry, ...]:
        return tuple(a for job in self.jobs for a in job.attempts)

    def job(self, task: str) -> Job:
        """The job of the entry with this task name (the first, if several entries share it)."""
        for job in self.jobs:
            if job.task == task:
                return job
        raise KeyError(f"run {self.id} of '{self.package}' has no job for task '{task}'")

    def refresh(self) -> Run:
        if self._reload is None:
            raise JQMError(f"run {self.id} is a detached snapshot; ask jqm.run({self.id}) instead")
        return self._reload(self.id)

    def wait(self, timeout: float = 60.0, poll_s: float = 0.1) -> Run:
        """Block until the run has finished and return it; RunTimeoutError after ``timeout`` seconds."""
        if self.status.finished:
            return self
        deadline = time.monotonic() + timeout
        status = self.status
        while not status.finished:
            if time.monotonic() >= deadline:
                raise RunTimeoutError(
                    f"run {self.id} of '{self.package}' is still {status} after {timeout:g} s; "
                    f"is a worker consuming its queues? (`jqm runs show {self.id}`)"
                )
            time.sleep(poll_s)
            # Polling reads the status alone; the jobs and their attempts are read once, at the end.
            status = self.refresh().status if self._status is None else self._status(self.id)
        return self.refresh()
