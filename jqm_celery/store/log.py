"""The one writer of log entries: each entry is inserted, and its event published, through ``write``.

An event is handed to the store's listeners (the notifier, the django-celery-beat bridge) only after the
transaction that recorded its entry has committed, so a listener never sees what was rolled back. The
attempts of jobs are the one exception to "insert through ``write``": an attempt's entry is inserted by
the claim that starts it and updated by the end, in the statements of ``attempts``, and the end of a
failed attempt publishes its event with ``publish``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, insert, select
from sqlalchemy.orm import Session

from jqm_celery.events import Event
from jqm_celery.records import LogEntry
from jqm_celery.statuses import LogKind
from jqm_celery.store import convert, writers
from jqm_celery.store.models import LogEntryRow

#: The key, in a session's ``info``, of the events its transaction will publish once committed.
EVENTS = "jqm_events"


@dataclass(frozen=True)
class LogLine(Event):
    """One log entry about to be written: its event, and what only the entry keeps.

    ``started_at`` defaults to ``at``; ``notify`` False when the writer knows that the package has no
    notification rules.
    """

    run_order: int | None = None
    started_at: datetime | None = None

    def event(self) -> Event:
        return Event(**{name: getattr(self, name) for name in _EVENT_FIELDS})

    def values(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": str(self.status),
            "package_name": self.package,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "task": self.task,
            "run_order": self.run_order,
            "error": self.error,
            "message": self.message,
            "started_at": self.started_at or self.at,
            "finished_at": self.at,
        }


#: The fields of an entry's event, read once (``dataclasses.fields`` costs more than building the event).
_EVENT_FIELDS = tuple(f.name for f in fields(Event))


def job_line(
    kind: LogKind, status: str, at: datetime, job_id: int, row: Any, *, message: str, error: str | None = None
) -> LogLine:
    """The entry of an event of one job; ``row`` has its package_name, run_id, task and run_order."""
    run_order = getattr(row, "run_order", None)
    return LogLine(
        kind,
        status,
        at,
        row.package_name,
        row.run_id,
        job_id,
        row.task,
        error=error,
        message=message,
        run_order=run_order,
    )


def write(s: Session, lines: Iterable[LogLine]) -> None:
    """Insert the entries in one statement; their events go to the listeners once ``s`` commits."""
    lines = list(lines)
    if not lines:
        return
    publish(s, (line.event() for line in lines))
    # Core on the session's connection (after writing what the session holds, so entries keep their
    # order): an ORM-enabled INSERT costs several times the statement.
    s.flush()
    if len(lines) == 1:
        s.connection().execute(_insert(), lines[0].values())
    else:
        writers.of(s).add_rows(s.connection(), LogEntryRow, [line.values() for line in lines])


def publish(s: Session, events: Iterable[Event]) -> None:
    """Tell the store's listeners of ``events`` once the transaction of ``s`` has committed."""
    s.info[EVENTS].extend(events)


@functools.cache
def _insert() -> Insert:
    return insert(LogEntryRow)


def entries(
    s: Session,
    *,
    package: str | None = None,
    run_id: int | None = None,
    job_id: int | None = None,
    status: str | None = None,
    kind: LogKind | None = None,
    limit: int = 200,
    before_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LogEntry]:
    """Log entries, newest first."""
    query = select(LogEntryRow).order_by(LogEntryRow.id.desc()).limit(limit)
    filters = {
        LogEntryRow.package_name: package,
        LogEntryRow.run_id: run_id,
        LogEntryRow.job_id: job_id,
        LogEntryRow.status: status,
        LogEntryRow.kind: kind,
    }
    query = query.where(*(column == value for column, value in filters.items() if value is not None))
    if before_id is not None:
        query = query.where(LogEntryRow.id < before_id)
    if since is not None:
        query = query.where(LogEntryRow.started_at >= since)
    if until is not None:
        query = query.where(LogEntryRow.started_at < until)
    return [convert.log_entry(row) for row in s.scalars(query)]
