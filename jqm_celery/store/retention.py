"""Run retention: the store's side. Finished package runs older than a cut-off are deleted with their jobs
(``ON DELETE CASCADE``) and their log entries, a batch per transaction; the statement that deletes a batch
checks again that each run has finished, so a run in flight is never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, select, update

from jqm_celery.statuses import RunStatus
from jqm_celery.store.models import LogEntryRow, RunRow
from jqm_celery.store.queue_models import ChoreRow
from jqm_celery.store.store import Store

_FINISHED = [s.value for s in RunStatus if s.finished]
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class RunRetentionStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def count(self, before: datetime) -> int:
        with self.store.transaction() as s:
            return s.scalar(select(func.count()).select_from(RunRow).where(*_cleanable(before))) or 0

    def delete_batch(self, before: datetime, batch_size: int) -> tuple[int, int]:
        """Delete up to ``batch_size`` finished runs (with their jobs) and their log entries; (runs, log
        entries)."""
        batch = select(RunRow.id).where(*_cleanable(before)).limit(batch_size).scalar_subquery()
        with self.store.transaction() as s:
            ids = list(
                s.scalars(
                    delete(RunRow).where(RunRow.id.in_(batch), *_cleanable(before)).returning(RunRow.id)
                )
            )
            if not ids:
                return 0, 0
            entries = s.execute(delete(LogEntryRow).where(LogEntryRow.run_id.in_(ids)))
            return len(ids), int(cast(CursorResult[Any], entries).rowcount)

    def claim_chore(self, name: str, now: datetime, every: timedelta) -> bool:
        """True for the one caller that may run chore ``name`` now: it has not run for ``every``."""
        with self.store.transaction() as s:
            self.store.writer.add_new_rows(s, ChoreRow, [{"name": name, "last_run_at": NEVER}])
        with self.store.transaction() as s:
            claimed = s.execute(
                update(ChoreRow)
                .where(ChoreRow.name == name, ChoreRow.last_run_at <= now - every)
                .values(last_run_at=now)
            )
            return bool(cast(CursorResult[Any], claimed).rowcount)


def _cleanable(before: datetime) -> tuple[ColumnElement[Any], ...]:
    return (RunRow.status.in_(_FINISHED), RunRow.finished_at < before)


__all__ = ["RunRetentionStore"]
