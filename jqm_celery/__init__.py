"""jqm-celery: a Job Queue Manager for Celery.

Job queue packages (named, ordered sequences of entries with recurrences, an On Error policy and a log)
that run as Celery chains on your own workers.
"""

from jqm_celery.clock import Clock, SystemClock
from jqm_celery.definitions import Entry, Package, RetryPolicy
from jqm_celery.embedded import embedded_app
from jqm_celery.errors import ConfigError, JobError, JQMError, NotFoundError, StateError, ValidationError
from jqm_celery.events import Event
from jqm_celery.job_context import JobContext, current_job
from jqm_celery.jobqueue import JobSpec
from jqm_celery.manager import JobQueueManager
from jqm_celery.notifications import Notify, Scenario, Webhook
from jqm_celery.package_list import PackagePage, PackageSummary
from jqm_celery.plans import JobPlan, RunPlan
from jqm_celery.queue_records import AuditAction, AuditEntry, Cleaned, QueueState
from jqm_celery.records import Job, LogEntry, PackageState, Run, RunSummary, RunTimeoutError
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import AttemptStatus, JobStatus, LogKind, OnError, PackageStatus, RunStatus
from jqm_celery.store.changes import PackageChanges
from jqm_celery.store.cues import Cues
from jqm_celery.store.schedule import TickResult
from jqm_celery.store.stops import StopReason
from jqm_celery.web.roles import Role
from jqm_celery.web.users import UserInfo, Users, WebUser

__all__ = [
    # the manager
    "JobQueueManager",
    "embedded_app",
    "Clock",
    "SystemClock",
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
    # inside a job's body
    "current_job",
    "JobContext",
    # what runs produce
    "Run",
    "Job",
    "LogEntry",
    "PackageState",
    "Event",
    # what the read methods return
    "PackagePage",
    "PackageSummary",
    "RunSummary",
    "PackageChanges",
    "Cues",
    "StopReason",
    # the job queue
    "JobSpec",
    "QueueState",
    "Cleaned",
    "AuditEntry",
    "AuditAction",
    # beat
    "TickResult",
    "RunPlan",
    "JobPlan",
    # the web UI's users
    "Users",
    "WebUser",
    "UserInfo",
    "Role",
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
