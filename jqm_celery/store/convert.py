"""Rows to records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from jqm_celery.definitions import Entry, Package
from jqm_celery.errors import ValidationError
from jqm_celery.notifications.rules import rule_from_dict
from jqm_celery.records import Job, LogEntry
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import JobStatus, LogKind, OnError
from jqm_celery.store.models import EntryRow, JobRow, LogEntryRow, PackageRow, RecurrenceRow
from jqm_celery.store.notification_models import NotificationRuleRow


def package_definition(
    row: PackageRow,
    entries: Sequence[EntryRow],
    recurrences: Sequence[RecurrenceRow],
    rules: Sequence[NotificationRuleRow] = (),
) -> Package:
    """The package as stored; a definition stored before today's checks that they refuse raises a
    ``ValidationError`` naming the package, the bad value and the way out."""
    try:
        return _definition(row, entries, recurrences, rules)
    except ValidationError as e:
        raise ValidationError(
            f"package {row.name!r} as stored cannot be read: {e}. Save a corrected definition under the "
            "same name (it replaces this one), or delete the package"
        ) from e


def _definition(
    row: PackageRow,
    entries: Sequence[EntryRow],
    recurrences: Sequence[RecurrenceRow],
    rules: Sequence[NotificationRuleRow],
) -> Package:
    return Package(
        row.name,
        entries=[Entry.from_dict(e.definition) for e in sorted(entries, key=lambda e: e.position)],
        on_error=OnError(row.on_error),
        recurrences=[Recurrence.from_dict(r.spec) for r in sorted(recurrences, key=lambda r: r.position)],
        catch_up=CatchUp(row.catch_up),
        allow_overlap=row.allow_overlap,
        description=row.description,
        notifications=[rule_from_dict(r.definition) for r in sorted(rules, key=lambda r: r.position)],
    )


def log_entry(row: LogEntryRow) -> LogEntry:
    return LogEntry(
        id=row.id,
        kind=LogKind(row.kind),
        status=row.status,
        package=row.package_name,
        run_id=row.run_id,
        job_id=row.job_id,
        entry_task=row.task,
        run_order=row.run_order,
        celery_task_id=row.celery_task_id,
        worker=row.worker,
        retry=row.retry,
        planned_delay=None if row.planned_delay_s is None else timedelta(seconds=row.planned_delay_s),
        error=row.error,
        traceback=row.traceback,
        message=row.message,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def new_job(job_id: int, values: Mapping[str, Any]) -> Job:
    """A job just inserted as column values (``store.new_job_values``): QUEUED, nothing run yet."""
    return Job(
        id=job_id,
        run_id=values["run_id"],
        package=values["package_name"],
        task=values["task"],
        run_order=values["run_order"],
        queue=values["queue"],
        status=JobStatus(values["status"]),
        retry=0,
        max_retries=values["max_retries"],
        current_delay=timedelta(0),
        worker=None,
        celery_task_id=None,
        error=None,
        description=values["description"],
        created_at=values["created_at"],
        started_at=None,
        finished_at=None,
        not_before=values.get("not_before"),
    )


def job(row: JobRow, attempts: Sequence[LogEntryRow] = ()) -> Job:
    return Job(
        id=row.id,
        run_id=row.run_id,
        package=row.package_name,
        task=row.task,
        run_order=row.run_order,
        queue=row.queue,
        status=JobStatus(row.status),
        retry=row.retry,
        max_retries=row.max_retries,
        current_delay=timedelta(seconds=row.current_delay_s),
        worker=row.worker,
        celery_task_id=row.celery_task_id,
        error=row.error,
        description=row.description,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=tuple(log_entry(a) for a in attempts),
        not_before=row.not_before,
    )
