"""Which packages changed since a moment: what a process that mirrors packages elsewhere (the
django-celery-beat bridge) reads to follow changes made by any other process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from jqm_celery.store.models import PackageRow
from jqm_celery.store.store import Store


@dataclass(frozen=True)
class PackageChanges:
    """Packages created, saved or moved to another status at or after ``since``."""

    names: tuple[str, ...]
    #: The latest change of any package (``None`` when there are none); pass it as the next ``since``.
    newest: datetime | None
    #: How many packages exist: a drop means some were deleted.
    count: int


def package_changes(store: Store, since: datetime | None) -> PackageChanges:
    with store.transaction() as s:
        count, newest = s.execute(select(func.count(), func.max(PackageRow.updated_at))).one()
        query = select(PackageRow.name).order_by(PackageRow.name)
        if since is not None:
            query = query.where(PackageRow.updated_at >= since)
        names = tuple(s.scalars(query))
    return PackageChanges(names, newest, int(count or 0))
