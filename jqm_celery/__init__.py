"""jqm-celery: a Job Queue Manager for Celery.

Job queue packages (named, ordered sequences of entries with recurrences, an On Error policy and a log)
that run as Celery chains on your own workers.

The public names below are imported on first use (PEP 562): a worker or beat process imports what it
runs, not the web UI's, the CLI's or the migrations' modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives.
_MODULES = {
    "Clock": "jqm_celery.clock",
    "SystemClock": "jqm_celery.clock",
    "Entry": "jqm_celery.definitions",
    "Package": "jqm_celery.definitions",
    "RetryPolicy": "jqm_celery.definitions",
    "embedded_app": "jqm_celery.embedded",
    "ConfigError": "jqm_celery.errors",
    "JobError": "jqm_celery.errors",
    "JQMError": "jqm_celery.errors",
    "NotFoundError": "jqm_celery.errors",
    "StateError": "jqm_celery.errors",
    "ValidationError": "jqm_celery.errors",
    "Event": "jqm_celery.events",
    "JobContext": "jqm_celery.job_context",
    "current_job": "jqm_celery.job_context",
    "JobSpec": "jqm_celery.jobqueue",
    "JobQueueManager": "jqm_celery.manager",
    "Notify": "jqm_celery.notifications",
    "Scenario": "jqm_celery.notifications",
    "Webhook": "jqm_celery.notifications",
    "PackagePage": "jqm_celery.package_list",
    "PackageSummary": "jqm_celery.package_list",
    "JobPlan": "jqm_celery.plans",
    "RunPlan": "jqm_celery.plans",
    "AuditAction": "jqm_celery.queue_records",
    "AuditEntry": "jqm_celery.queue_records",
    "Cleaned": "jqm_celery.queue_records",
    "QueueState": "jqm_celery.queue_records",
    "Job": "jqm_celery.records",
    "LogEntry": "jqm_celery.records",
    "PackageState": "jqm_celery.records",
    "Run": "jqm_celery.records",
    "RunSummary": "jqm_celery.records",
    "RunTimeoutError": "jqm_celery.records",
    "CatchUp": "jqm_celery.recurrence",
    "Recurrence": "jqm_celery.recurrence",
    "AttemptStatus": "jqm_celery.statuses",
    "JobStatus": "jqm_celery.statuses",
    "LogKind": "jqm_celery.statuses",
    "OnError": "jqm_celery.statuses",
    "PackageStatus": "jqm_celery.statuses",
    "RunStatus": "jqm_celery.statuses",
    "PackageChanges": "jqm_celery.store.changes",
    "Cues": "jqm_celery.store.cues",
    "TickResult": "jqm_celery.store.schedule",
    "StopReason": "jqm_celery.store.stops",
    "Role": "jqm_celery.web.roles",
    "UserInfo": "jqm_celery.web.users",
    "Users": "jqm_celery.web.users",
    "WebUser": "jqm_celery.web.users",
}

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


if not TYPE_CHECKING:  # type checkers read the imports above; an unknown name stays an error for them

    def __getattr__(name: str) -> Any:
        module = _MODULES.get(name)
        if module is None:
            raise AttributeError(f"module 'jqm_celery' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
