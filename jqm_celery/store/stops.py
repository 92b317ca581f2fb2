"""Why a package stopped: the On Error policy's log entry and the attempt that failed for good before it;
and one log entry by id. Read-only queries for the web UI's "Show Error"."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from jqm_celery.errors import NotFoundError
from jqm_celery.records import LogEntry
from jqm_celery.statuses import AttemptStatus, LogKind
from jqm_celery.store.convert import log_entry
from jqm_celery.store.models import LogEntryRow
from jqm_celery.store.store import Store


@dataclass(frozen=True)
class StopReason:
    """The latest stop of a package by its On Error policy."""

    #: The ``PACKAGE_STOPPED`` log entry (its run, time and message).
    stopped: LogEntry
    #: The attempt of that run that failed for good (job, attempt, error, traceback); ``None`` if the run
    #: was stopped for another reason (a lost worker, a run that could not be sent).
    failed: LogEntry | None


def stop_reasons(store: Store, packages: Iterable[str]) -> dict[str, StopReason]:
    """The latest stop of each of ``packages`` that has one: two indexed look-ups per package."""
    found: dict[str, StopReason] = {}
    with store.transaction() as s:
        for name in packages:
            stopped = s.scalars(
                select(LogEntryRow)
                .where(LogEntryRow.package_name == name, LogEntryRow.kind == LogKind.PACKAGE_STOPPED)
                .order_by(LogEntryRow.id.desc())
                .limit(1)
            ).first()
            if stopped is None:
                continue
            failed = None
            if stopped.run_id is not None:
                failed = s.scalars(
                    select(LogEntryRow)
                    .where(
                        LogEntryRow.run_id == stopped.run_id,
                        LogEntryRow.kind == LogKind.ATTEMPT,
                        LogEntryRow.status == AttemptStatus.ERROR,
                    )
                    .order_by(LogEntryRow.id)
                    .limit(1)
                ).first()
            found[name] = StopReason(log_entry(stopped), None if failed is None else log_entry(failed))
    return found


def one_log_entry(store: Store, entry_id: int) -> LogEntry:
    with store.transaction() as s:
        row = s.get(LogEntryRow, entry_id)
        if row is None:
            raise NotFoundError(f"log entry {entry_id} does not exist; it may have been cleaned")
        return log_entry(row)
