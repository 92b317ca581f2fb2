"""Statuses of packages, runs, jobs and log entries, and the package lifecycle rules."""

from __future__ import annotations

from enum import StrEnum

from jqm_celery.errors import StateError


class PackageStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ON_HOLD = "ON_HOLD"
    ERROR = "ERROR"


class OnError(StrEnum):
    """What a package does when one of its jobs has failed for good."""

    STOP = "STOP"
    FINISH_THEN_STOP = "FINISH_THEN_STOP"
    CONTINUE = "CONTINUE"


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_RUN


_FINISHED_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED})


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    DELAYED = "DELAYED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    DONE = "DONE"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    ABORTED = "ABORTED"

    @property
    def finished(self) -> bool:
        return self in FINISHED_JOB


#: A job in one of these statuses will not run again unless it is re-added.
FINISHED_JOB = frozenset(
    {JobStatus.DONE, JobStatus.ERROR, JobStatus.SKIPPED, JobStatus.CANCELLED, JobStatus.ABORTED}
)
#: A job in one of these statuses may still start an attempt.
WAITING_JOB = frozenset({JobStatus.QUEUED, JobStatus.DELAYED, JobStatus.RETRYING})


class LogKind(StrEnum):
    """What a log entry records: one attempt of a job, or an event of a run or package."""

    ATTEMPT = "ATTEMPT"
    RUN_STARTED = "RUN_STARTED"
    RUN_FINISHED = "RUN_FINISHED"
    RUN_STOPPED_BY_HOLD = "RUN_STOPPED_BY_HOLD"
    JOB_SKIPPED = "JOB_SKIPPED"
    PACKAGE_STOPPED = "PACKAGE_STOPPED"
    #: A notification was still refused after its retries (the notification ledger has the details).
    NOTIFICATION_FAILED = "NOTIFICATION_FAILED"
    JOB_CANCELLED = "JOB_CANCELLED"
    JOB_ABORTED = "JOB_ABORTED"
    JOB_REQUEUED = "JOB_REQUEUED"
    #: The reconciler found the job RUNNING on a worker that is gone, or past its hard time limit, or
    #: waiting with its message gone (sent again).
    JOB_STALE = "JOB_STALE"
    RUN_CANCELLED = "RUN_CANCELLED"
    FIRE_SKIPPED = "FIRE_SKIPPED"  # a recurrence came due and started no run (overlap, catch-up SKIP)


class AttemptStatus(StrEnum):
    """The outcome of one attempt, as its log entry records it."""

    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"  # failed, and a retry is planned
    ERROR = "ERROR"  # failed for good
    INTERRUPTED = "INTERRUPTED"  # its worker was lost; the job was delivered again
    ABORTED = "ABORTED"  # terminated on request (jqm.abort)


EDITABLE = frozenset({PackageStatus.DRAFT, PackageStatus.ON_HOLD, PackageStatus.ERROR})


def ensure_editable(name: str, status: PackageStatus, action: str = "edit") -> None:
    """Refuse to change a package that is not DRAFT, ON_HOLD or ERROR."""
    if status not in EDITABLE:
        raise StateError(
            f"package '{name}' is {status}: cannot {action} it; "
            f"put it on hold first (jqm.hold('{name}') or `jqm packages hold {name}`)"
        )


def ensure_can_hold(name: str, status: PackageStatus) -> None:
    if status is not PackageStatus.ACTIVE:
        raise StateError(f"package '{name}' is {status}: only an ACTIVE package can be put on hold")
