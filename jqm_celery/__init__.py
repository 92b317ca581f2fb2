"""jqm-celery: a Job Queue Manager for Celery.

Job queue packages (named, ordered sequences of entries with recurrences, an On Error policy and a log)
that run as Celery chains on your own workers.
"""

from jqm_celery.definitions import Entry, Package, RetryPolicy
from jqm_celery.embedded import embedded_app
from jqm_celery.errors import ConfigError, JobError, JQMError, NotFoundError, StateError, ValidationError
from jqm_celery.manager import JobQueueManager
from jqm_celery.notifications import Notify, Scenario, Webhook
from jqm_celery.records import Job, LogEntry, PackageState, Run, RunTimeoutError
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import AttemptStatus, JobStatus, LogKind, OnError, PackageStatus, RunStatus

__all__ = [
    # the manager
    "JobQueueManager",
    "embedded_app",
    # definitions
    "Package",
    "Entry",
    "RetryPolicy",
    "OnError",
    "Recurrence",
    "CatchUp",
    # notification rules
    "Notify",
    "Webhook",
    "Scenario",
    # what runs produce
    "Run",
    "Job",
    "LogEntry",
    "PackageState",
    # statuses
    "PackageStatus",
    "RunStatus",
    "JobStatus",
    "AttemptStatus",
    "LogKind",
    # errors
    "JQMError",
    "ValidationError",
    "NotFoundError",
    "StateError",
    "ConfigError",
    "RunTimeoutError",
    "JobError",
]
