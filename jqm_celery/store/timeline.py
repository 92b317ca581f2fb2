"""The recurrences due soonest across ACTIVE packages, by the indexed ``next_fire_at``: what the web UI's
timeline of the next fires reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from jqm_celery.recurrence import Recurrence
from jqm_celery.statuses import PackageStatus
from jqm_celery.store.models import PackageRow, RecurrenceRow
from jqm_celery.store.store import Store


def due_recurrences(store: Store, until: datetime, limit: int) -> list[tuple[str, Recurrence, datetime]]:
    """(package, recurrence, next fire) of ACTIVE packages' recurrences due by ``until``, soonest first."""
    with store.transaction() as s:
        rows = s.execute(
            select(PackageRow.name, RecurrenceRow.spec, RecurrenceRow.next_fire_at)
            .join(PackageRow, PackageRow.id == RecurrenceRow.package_id)
            .where(
                RecurrenceRow.next_fire_at.is_not(None),
                RecurrenceRow.next_fire_at <= until,
                PackageRow.status == PackageStatus.ACTIVE,
            )
            .order_by(RecurrenceRow.next_fire_at, RecurrenceRow.id)
            .limit(limit)
        ).all()
    return [(name, Recurrence.from_dict(spec), next_fire) for name, spec, next_fire in rows if next_fire]
