"""What the manager reads back: packages, runs, log entries, and the counts and lists the web UI shows.

Nothing here writes; ``JobQueueManager`` delegates its read methods here and documents them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from jqm_celery.clock import Clock
from jqm_celery.errors import ValidationError
from jqm_celery.package_list import PackagePage
from jqm_celery.paging import Window
from jqm_celery.records import LogEntry, PackageState, Run
from jqm_celery.recurrence import next_runs
from jqm_celery.statuses import LogKind, PackageStatus, RunStatus
from jqm_celery.store import Store
from jqm_celery.store.changes import PackageChanges, package_changes
from jqm_celery.store.cues import Cues, cues
from jqm_celery.store.package_list import package_page
from jqm_celery.store.starters import run_starters
from jqm_celery.store.stops import StopReason, one_log_entry, stop_reasons
from jqm_celery.store.timeline import due_recurrences


class Views:
    """Read queries over one store, with the manager's clock for "now"."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    # -- packages ---------------------------------------------------------------------------

    def package(self, name: str) -> PackageState:
        return self._store.package(name)

    def packages(self) -> list[PackageState]:
        return self._store.packages()

    def package_names(self) -> list[str]:
        return self._store.package_names()

    def package_list(
        self,
        *,
        status: PackageStatus | str | Sequence[PackageStatus | str],
        name_contains: str | None,
        limit: int,
        offset: int,
    ) -> PackagePage:
        _check_whole("package list", limit=(limit, 1), offset=(offset, 0))
        statuses = [_package_status(s) for s in ([status] if isinstance(status, str) else status)]
        return package_page(
            self._store, statuses=statuses, name_contains=name_contains, limit=limit, offset=offset
        )

    def package_changes(self, since: datetime | None) -> PackageChanges:
        return package_changes(self._store, since)

    def next_runs(self, name: str, count: int) -> list[datetime]:
        recurrences = self._store.package(name).definition.recurrences
        return [at for at, _ in next_runs(recurrences, self._clock.now(), count)]

    # -- runs and log entries ---------------------------------------------------------------

    def run(self, run_id: int) -> Run:
        return self.reloadable(self._store.run(run_id))

    def reloadable(self, run: Run) -> Run:
        """``run`` with what ``Run.wait`` and ``Run.refresh`` need to read it again."""
        return dataclasses.replace(run, _reload=self.run, _status=self._store.run_status)

    def runs(
        self,
        package: str | None,
        status: RunStatus | str | None,
        limit: int,
        shown: Window,
    ) -> list[Run]:
        if package is not None:
            self._store.package(package)
        status = None if status is None else _run_status(status)
        found = self._store.runs(package, status, limit, shown)
        return [dataclasses.replace(r, _reload=self.run) for r in found]

    def log_entries(
        self,
        *,
        package: str | None,
        run_id: int | None,
        job_id: int | None,
        status: str | None,
        kind: LogKind | str | None,
        limit: int,
        before_id: int | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[LogEntry]:
        _check_aware("log entries", since=since, until=until)
        if package is not None:
            self._store.package(package)
        if run_id is not None:
            self._store.run(run_id)
        entries = self._store.log_entries(
            package=package,
            run_id=run_id,
            job_id=job_id,
            status=status.upper() if status else None,
            kind=None if kind is None else LogKind(kind),
            limit=limit,
            before_id=before_id,
            since=since,
            until=until,
        )
        return entries[::-1]

    def log_entry(self, entry_id: int) -> LogEntry:
        return one_log_entry(self._store, entry_id)

    # -- what an operator looks at ----------------------------------------------------------

    def cues(self) -> Cues:
        return cues(self._store, self._clock.now())

    def run_starters(self, package: str, run_ids: Sequence[int]) -> dict[int, str]:
        return {
            run_id: f"{actor} ({via})" if via else actor
            for run_id, (actor, via) in run_starters(self._store, package, run_ids).items()
        }

    def upcoming_fires(
        self, within: timedelta, *, recurrences: int, per_recurrence: int
    ) -> list[tuple[datetime, str]]:
        now = self._clock.now()
        until = now + within
        fires: list[tuple[datetime, str]] = []
        for package, recurrence, first in due_recurrences(self._store, until, recurrences):
            at: datetime | None = first
            for _ in range(per_recurrence):
                if at is None or at > until:
                    break
                fires.append((at, package))
                at = recurrence.next_after(at)
        return sorted(fires)

    def stop_reasons(self, packages: Sequence[str]) -> dict[str, StopReason]:
        return stop_reasons(self._store, packages)


def _check_whole(owner: str, **values: tuple[object, int]) -> None:
    for label, (value, low) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(f"{owner}: {label} must be a whole number ≥ {low}, got {value!r}")


def _check_aware(owner: str, **values: datetime | None) -> None:
    for label, value in values.items():
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(f"{owner}: {label} must be an aware datetime, got {value!r}")


def _package_status(value: PackageStatus | str) -> PackageStatus:
    try:
        return PackageStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"package status {value!r} is not valid; "
            f"choose one of {', '.join(s.value for s in PackageStatus)}"
        ) from None


def _run_status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(str(value).upper())
    except ValueError:
        raise ValidationError(
            f"run status {value!r} is not valid; choose one of {', '.join(s.value for s in RunStatus)}"
        ) from None
