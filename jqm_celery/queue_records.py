"""What the job queue hands back: a queue with its job counts, an audit entry, the result of a clean."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuditAction(StrEnum):
    """What someone did, as the audit trail records it."""

    CREATE = "CREATE"
    SAVE = "SAVE"
    ACTIVATE = "ACTIVATE"
    HOLD = "HOLD"
    DELETE = "DELETE"
    DEFINE_QUEUE = "DEFINE_QUEUE"
    CANCEL = "CANCEL"
    ABORT = "ABORT"
    REQUEUE = "REQUEUE"
    CLEAN = "CLEAN"
    CANCEL_RUN = "CANCEL_RUN"
    RUN_NOW = "RUN_NOW"
    PAUSE_QUEUE = "PAUSE_QUEUE"
    RESUME_QUEUE = "RESUME_QUEUE"
    SHUT_DOWN_QUEUE = "SHUT_DOWN_QUEUE"
    CLEAN_RUNS = "CLEAN_RUNS"


#: The actor recorded for changes made by beat and the reconciler rather than a person.
SCHEDULER = "scheduler"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: AuditAction
    #: What was changed: ``package 'x'``, ``job 12``, ``run 7``, ``queue 'reports'``, ``jobs``.
    target: str
    package: str | None
    detail: str


@dataclass(frozen=True)
class QueueState:
    """A queue, its pool size (None if jobs name it but it was never defined) and its jobs by status."""

    name: str
    pool_size: int | None
    queued: int
    delayed: int
    running: int
    retrying: int
    failed: int
    #: No job of a paused queue starts until it is resumed; running jobs finish.
    paused: bool = False
    #: The live workers that consume it (from their heartbeats; the queues page asks for them).
    workers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cleaned:
    """What ``jqm.clean`` deleted."""

    jobs: int
    log_entries: int


@dataclass(frozen=True)
class CleanedRuns:
    """What ``jqm.clean_runs`` deleted (the runs' jobs went with them)."""

    runs: int
    log_entries: int
