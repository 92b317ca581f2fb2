"""A package's rows: its definition (entries, recurrences, notification rules), its state, its schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jqm_celery.definitions import Package
from jqm_celery.errors import NotFoundError, did_you_mean
from jqm_celery.records import PackageState, RunSummary
from jqm_celery.recurrence import Recurrence
from jqm_celery.statuses import PackageStatus, RunStatus
from jqm_celery.store import convert
from jqm_celery.store.models import EntryRow, PackageRow, RecurrenceRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow


def package_row(s: Session, name: str, *, lock: bool = False, missing_ok: bool = False) -> Any:
    query = select(PackageRow).where(PackageRow.name == name)
    if lock:
        query = query.with_for_update()
    row = s.scalar(query)
    if row is None and not missing_ok:
        names = list(s.scalars(select(PackageRow.name)))
        raise NotFoundError(f"package '{name}' does not exist{did_you_mean(name, names)}")
    return row


def definition(s: Session, row: PackageRow) -> Package:
    entries = s.scalars(select(EntryRow).where(EntryRow.package_id == row.id)).all()
    recurrences = s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == row.id)).all()
    rules = s.scalars(select(NotificationRuleRow).where(NotificationRuleRow.package_id == row.id)).all()
    return convert.package_definition(row, entries, recurrences, rules)


def state(s: Session, row: PackageRow) -> PackageState:
    last = s.scalar(select(RunRow).where(RunRow.package_name == row.name).order_by(RunRow.id.desc()).limit(1))
    next_run_at = s.scalar(
        select(func.min(RecurrenceRow.next_fire_at)).where(RecurrenceRow.package_id == row.id)
    )
    return PackageState(
        definition=definition(s, row),
        status=PackageStatus(row.status),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_run_at=next_run_at if row.status == PackageStatus.ACTIVE else None,
        last_run=None
        if last is None
        else RunSummary(last.id, RunStatus(last.status), last.created_at, last.finished_at),
    )


def reschedule(s: Session, package_id: int, now: datetime | None) -> None:
    """Set each recurrence's next fire time from ``now``, or clear them all (None: not active)."""
    for recurrence in s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == package_id)):
        recurrence.next_fire_at = (
            None if now is None else Recurrence.from_dict(recurrence.spec).next_after(now)
        )


def write_definition(s: Session, row: PackageRow, package: Package, *, replace: bool) -> None:
    row.on_error = package.on_error
    row.catch_up = package.catch_up
    row.allow_overlap = package.allow_overlap
    row.description = package.description
    s.flush()
    if replace:
        for old in s.scalars(select(EntryRow).where(EntryRow.package_id == row.id)):
            s.delete(old)
        for old_rec in s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == row.id)):
            s.delete(old_rec)
        rules = select(NotificationRuleRow).where(NotificationRuleRow.package_id == row.id)
        for old_rule in s.scalars(rules):
            s.delete(old_rule)
        s.flush()
    for position, entry in enumerate(package.entries, start=1):
        s.add(EntryRow(package_id=row.id, position=position, definition=entry.to_dict()))
    for position, recurrence in enumerate(package.recurrences, start=1):
        s.add(RecurrenceRow(package_id=row.id, position=position, spec=recurrence.to_dict()))
    for position, rule in enumerate(package.notifications, start=1):
        s.add(NotificationRuleRow(package_id=row.id, position=position, definition=rule.to_dict()))
