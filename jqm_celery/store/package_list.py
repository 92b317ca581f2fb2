"""The package list, one page at a time: a handful of queries whatever the number of packages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select

from jqm_celery.package_list import PackagePage, PackageSummary
from jqm_celery.records import RunSummary
from jqm_celery.statuses import OnError, PackageStatus, RunStatus
from jqm_celery.store.models import EntryRow, PackageRow, RecurrenceRow, RunRow
from jqm_celery.store.store import Store


def package_page(
    store: Store,
    *,
    statuses: Sequence[PackageStatus] = (),
    name_contains: str | None = None,
    limit: int,
    offset: int,
) -> PackagePage:
    filters: list[ColumnElement[bool]] = []
    if statuses:
        filters.append(PackageRow.status.in_([str(s) for s in statuses]))
    if name_contains:
        pattern = name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        filters.append(func.lower(PackageRow.name).like(f"%{pattern}%", escape="\\"))
    with store.transaction() as s:
        total = s.scalar(select(func.count()).select_from(PackageRow).where(*filters)) or 0
        rows = s.execute(
            select(
                PackageRow.id,
                PackageRow.name,
                PackageRow.status,
                PackageRow.description,
                PackageRow.on_error,
                PackageRow.updated_at,
            )
            .where(*filters)
            .order_by(PackageRow.name)
            .limit(limit)
            .offset(offset)
        ).all()
        ids = [row.id for row in rows]
        names = [row.name for row in rows]
        entries: dict[int, int] = dict(
            s.execute(
                select(EntryRow.package_id, func.count())
                .where(EntryRow.package_id.in_(ids))
                .group_by(EntryRow.package_id)
            ).all()
        )
        recurrences = {
            package_id: (count, next_fire)
            for package_id, count, next_fire in s.execute(
                select(RecurrenceRow.package_id, func.count(), func.min(RecurrenceRow.next_fire_at))
                .where(RecurrenceRow.package_id.in_(ids))
                .group_by(RecurrenceRow.package_id)
            )
        }
        newest = (
            select(func.max(RunRow.id)).where(RunRow.package_name.in_(names)).group_by(RunRow.package_name)
        )
        last_runs = {
            run.package_name: RunSummary(run.id, RunStatus(run.status), run.created_at, run.finished_at)
            for run in s.scalars(select(RunRow).where(RunRow.id.in_(newest)))
        }
    summaries = []
    for row in rows:
        count, next_fire = recurrences.get(row.id, (0, None))
        status = PackageStatus(row.status)
        summaries.append(
            PackageSummary(
                name=row.name,
                status=status,
                description=row.description,
                on_error=OnError(row.on_error),
                entries=entries.get(row.id, 0),
                recurrences=count,
                next_run_at=next_fire if status is PackageStatus.ACTIVE else None,
                last_run=last_runs.get(row.name),
                updated_at=row.updated_at,
            )
        )
    return PackagePage(total=total, offset=offset, packages=tuple(summaries))
