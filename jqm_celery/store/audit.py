"""The audit trail: one row per change, written in the transaction of the change when there is one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from jqm_celery.paging import NEWEST, Window, keyset
from jqm_celery.queue_records import AuditAction, AuditEntry
from jqm_celery.store.queue_models import AuditRow
from jqm_celery.store.store import Store


def record(
    s: Session,
    now: datetime,
    actor: str,
    action: AuditAction,
    target: str,
    *,
    package: str | None = None,
    detail: str = "",
) -> None:
    s.execute(
        insert(AuditRow).values(
            at=now, actor=actor, action=action, target=target, package_name=package, detail=detail
        )
    )


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        now: datetime,
        actor: str,
        action: AuditAction,
        target: str,
        *,
        package: str | None = None,
        detail: str = "",
    ) -> None:
        with self.store.transaction() as s:
            record(s, now, actor, action, target, package=package, detail=detail)

    def entries(
        self, *, package: str | None = None, limit: int = 200, window: Window = NEWEST
    ) -> list[AuditEntry]:
        """Newest first."""
        query = keyset(
            select(AuditRow).order_by(AuditRow.id.desc()).limit(limit), window, AuditRow.id, AuditRow.at
        )
        if package is not None:
            query = query.where(AuditRow.package_name == package)
        with self.store.transaction() as s:
            return [
                AuditEntry(
                    id=row.id,
                    at=row.at,
                    actor=row.actor,
                    action=AuditAction(row.action),
                    target=row.target,
                    package=row.package_name,
                    detail=row.detail,
                )
                for row in s.scalars(query)
            ]
