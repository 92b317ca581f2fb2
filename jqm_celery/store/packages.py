"""The store's packages: save, read, delete, and move between DRAFT, ACTIVE, ON_HOLD and ERROR."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jqm_celery.definitions import Package
from jqm_celery.errors import ValidationError
from jqm_celery.records import PackageState
from jqm_celery.statuses import LogKind, PackageStatus, ensure_editable
from jqm_celery.store import lifecycle
from jqm_celery.store.base import StoreBase
from jqm_celery.store.models import PackageRow, RunRow
from jqm_celery.store.package_rows import definition, package_row, reschedule, state, write_definition


class PackageStore(StoreBase):
    def save_package(self, package: Package, now: datetime, *, create_only: bool = False) -> bool:
        """Create the package (DRAFT) or replace the definition of an editable one; True if created."""
        with self.transaction() as s:
            row = package_row(s, package.name, lock=True, missing_ok=True)
            if row is None:
                row = PackageRow(
                    name=package.name,
                    status=PackageStatus.DRAFT,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                write_definition(s, row, package, replace=False)
                return True
            if create_only:
                raise ValidationError(
                    f"package '{package.name}' already exists; pick another name, or use jqm.save(...) to "
                    "change it"
                )
            if _unchanged(s, row, package):
                return False
            ensure_editable(package.name, PackageStatus(row.status))
            write_definition(s, row, package, replace=True)
            row.version += 1
            row.updated_at = now
            return False

    def package(self, name: str) -> PackageState:
        with self.transaction() as s:
            return state(s, package_row(s, name))

    def packages(self) -> list[PackageState]:
        with self.transaction() as s:
            rows = s.scalars(select(PackageRow).order_by(PackageRow.name)).all()
            return [state(s, row) for row in rows]

    def set_status(
        self,
        name: str,
        to: PackageStatus,
        now: datetime,
        check: Callable[[str, PackageStatus], None],
    ) -> PackageState:
        """Move the package to ``to`` after ``check(name, current)`` has accepted the move.

        ON_HOLD stops the package's runs in flight (``lifecycle.stop``).
        """
        with self.transaction() as s:
            row = package_row(s, name, lock=True)
            check(name, PackageStatus(row.status))
            row.status = to
            row.updated_at = now
            reschedule(s, row.id, now if to is PackageStatus.ACTIVE else None)
            if to is PackageStatus.ON_HOLD:
                for run in _runs_in_flight(s, name):
                    lifecycle.stop(s, run, now, "package put on hold", LogKind.RUN_STOPPED_BY_HOLD)
            return state(s, row)

    def delete_package(self, name: str) -> None:
        with self.transaction() as s:
            row = package_row(s, name, lock=True)
            ensure_editable(name, PackageStatus(row.status), action="delete")
            s.delete(row)

    def package_names(self) -> list[str]:
        with self.transaction() as s:
            return list(s.scalars(select(PackageRow.name).order_by(PackageRow.name)))

    def _definition(self, s: Session, row: PackageRow) -> Package:
        return definition(s, row)


def _runs_in_flight(s: Session, name: str) -> list[RunRow]:
    return list(
        s.scalars(
            select(RunRow)
            .where(
                RunRow.package_name == name,
                RunRow.status.in_(lifecycle.IN_FLIGHT),
                RunRow.stop_reason.is_(None),
            )
            .with_for_update()
        )
    )


def _unchanged(s: Session, row: PackageRow, package: Package) -> bool:
    try:
        return definition(s, row) == package
    except ValidationError:
        # Stored before a check it now fails: it cannot equal a definition that passes, which replaces it.
        return False
