"""The store's runs: start one, read them, send the rest of one, and end one (through ``lifecycle``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, select

from jqm_celery.definitions import Entry, Package
from jqm_celery.errors import NotFoundError, StateError, did_you_mean
from jqm_celery.notifications.rules import rule_from_dict
from jqm_celery.paging import NEWEST, Window, keyset
from jqm_celery.plans import RunClosed, RunPlan
from jqm_celery.records import LogEntry, Run
from jqm_celery.statuses import FINISHED_JOB, LogKind, OnError, RunStatus
from jqm_celery.store import convert, lifecycle, log
from jqm_celery.store.base import StoreBase
from jqm_celery.store.models import EntryRow, JobRow, LogEntryRow, PackageRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow
from jqm_celery.store.writers import Writes

_FINISHED = [s.value for s in FINISHED_JOB]


class RunStore(StoreBase):
    # -- starting a run ---------------------------------------------------------------------

    def create_run(
        self, name: str, trigger: str, now: datetime, *, queue_if_busy: bool
    ) -> tuple[RunPlan, bool]:
        """Insert a run and its jobs; returns (plan, start now). Refuses a second run unless queued."""
        plan, _, start_now = self.start_run(name, trigger, now, queue_if_busy=queue_if_busy)
        return plan, start_now

    def start_run(
        self,
        name: str,
        trigger: str,
        now: datetime,
        *,
        queue_if_busy: bool,
        check: Callable[[Package], None] | None = None,
    ) -> tuple[RunPlan, Run, bool]:
        """``create_run``, after ``check(definition)`` has accepted the package; also returns the new run."""
        [started] = self.start_runs([name], trigger, now, queue_if_busy=queue_if_busy, check=check)
        return started

    def start_runs(
        self,
        names: Sequence[str],
        trigger: str,
        now: datetime,
        *,
        queue_if_busy: bool,
        check: Callable[[Package], None] | None = None,
    ) -> list[tuple[RunPlan, Run, bool]]:
        """``start_run`` of each of ``names``, in order, in one transaction: all of them or none.

        An unknown name, a package ``check`` refuses, or (unless ``queue_if_busy``) a package with a run
        in flight fails the call before anything is written. A name given twice starts a second run
        behind the first, as two calls would (queued, or refused).
        """
        with self.writer.writes() as w:
            rows = w.rows(_packages_locked(), {"p_names": sorted(set(names))})
            packages = _startable(w, rows)
            _refuse_unknown(w, names, set(packages))
            if check is not None:
                for package in packages.values():
                    check(package)
            busy = {name for name, statuses in lifecycle.in_flight(w, list(packages)).items() if statuses}
            openings: list[lifecycle.Opening] = []
            for name in names:
                openings.append(lifecycle.Opening(packages[name], start_now=name not in busy))
                busy.add(name)
            refused = sorted({o.package.name for o in openings if not o.start_now})
            if refused and not queue_if_busy:
                listed = ", ".join(f"'{name}'" for name in refused)
                raise StateError(
                    f"package {listed} already has a run in flight; wait for it to finish, or ask to queue "
                    "this one (jqm.run_now(name, queue=True) or `jqm packages run NAME --queue`)"
                )
            opened = lifecycle.open_runs(w, openings, trigger, now)
            return [(plan, run, o.start_now) for (plan, run), o in zip(opened, openings, strict=True)]

    def start_queued_run(self, run_id: int, now: datetime) -> RunPlan | None:
        """Mark a queued run as started; None if it is no longer queued."""
        with self.transaction() as s:
            return lifecycle.start_queued(s, run_id, now)

    # -- reading runs -----------------------------------------------------------------------

    def run(self, run_id: int) -> Run:
        with self.transaction() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                raise NotFoundError(f"run {run_id} does not exist; list runs with `jqm runs list`")
            jobs = s.scalars(select(JobRow).where(JobRow.run_id == run_id).order_by(JobRow.position)).all()
            attempts = s.scalars(
                select(LogEntryRow)
                .where(LogEntryRow.run_id == run_id, LogEntryRow.kind == LogKind.ATTEMPT)
                .order_by(LogEntryRow.id)
            ).all()
            by_job: dict[int, list[LogEntryRow]] = {}
            for attempt in attempts:
                by_job.setdefault(attempt.job_id or 0, []).append(attempt)
            return _run(run, tuple(convert.job(j, by_job.get(j.id, ())) for j in jobs))

    def run_status(self, run_id: int) -> RunStatus:
        """Only the run's status: what waiting on a run polls."""
        with self.autocommit() as conn:
            status = conn.scalar(select(RunRow.status).where(RunRow.id == run_id))
        if status is None:
            raise NotFoundError(f"run {run_id} does not exist; list runs with `jqm runs list`")
        return RunStatus(status)

    def runs(
        self,
        package: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        window: Window = NEWEST,
    ) -> list[Run]:
        with self.transaction() as s:
            query = keyset(
                select(RunRow).order_by(RunRow.id.desc()).limit(limit), window, RunRow.id, RunRow.created_at
            )
            if package is not None:
                query = query.where(RunRow.package_name == package)
            if status is not None:
                query = query.where(RunRow.status == status)
            return [_run(r, ()) for r in s.scalars(query)]

    def log_entries(
        self,
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
        """Newest first."""
        with self.transaction() as s:
            return log.entries(
                s,
                package=package,
                run_id=run_id,
                job_id=job_id,
                status=status,
                kind=kind,
                limit=limit,
                before_id=before_id,
                since=since,
                until=until,
            )

    # -- the rest of a run ------------------------------------------------------------------

    def unsettled_jobs(self, run_id: int, up_to_run_order: int) -> int:
        """How many jobs of the run, with a run order up to the given one, have not finished yet."""
        with self.transaction() as s:
            return (
                s.scalar(
                    select(func.count())
                    .select_from(JobRow)
                    .where(
                        JobRow.run_id == run_id,
                        JobRow.run_order <= up_to_run_order,
                        JobRow.status.not_in(_FINISHED),
                    )
                )
                or 0
            )

    def remaining_plan(self, run_id: int, after_run_order: int, *, stages: int | None = None) -> RunPlan:
        """The jobs of the run with a higher run order, as a plan (to send the next part of a run).

        ``stages``: only the jobs of the next that many run orders (the compiler sends a part of a long
        run, and needs one stage more to know that another part follows).
        """
        # Only the columns a plan needs, read with Core in one query (the run's row joined to the jobs,
        # so that a run with none left still names its package): this runs for every part of a long run.
        later = and_(JobRow.run_id == RunRow.id, JobRow.run_order > after_run_order)
        if stages is not None:
            orders = (
                select(JobRow.run_order)
                .where(JobRow.run_id == run_id, JobRow.run_order > after_run_order)
                .distinct()
                .order_by(JobRow.run_order)
                .limit(stages)
            ).subquery()
            later = and_(later, JobRow.run_order <= select(func.max(orders.c.run_order)).scalar_subquery())
        query = (
            select(
                RunRow.package_name,
                JobRow.id,
                JobRow.task,
                JobRow.run_order,
                JobRow.queue,
                JobRow.soft_time_limit_s,
                JobRow.time_limit_s,
                JobRow.args,
                JobRow.kwargs,
            )
            .select_from(RunRow)
            .outerjoin(JobRow, later)
            .where(RunRow.id == run_id)
            .order_by(JobRow.position)
        )
        with self.autocommit() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFoundError(f"run {run_id} does not exist")
        jobs = tuple(lifecycle.job_plan(row) for row in rows if row.id is not None)
        return RunPlan(run_id=run_id, package=rows[0].package_name, jobs=jobs)

    # -- the end of a run (see lifecycle) ---------------------------------------------------

    def apply_error_policy(self, run_id: int, now: datetime, reason: str) -> OnError:
        """A job of the run failed for good: skip the rest now (STOP) or flag the package to stop."""
        with self.transaction() as s:
            policy = lifecycle.apply_error_policy(s, run_id, now, reason)
        if policy is None:
            raise NotFoundError(f"run {run_id} does not exist")
        return policy

    def fail_dispatch(self, run_id: int, now: datetime, error: str) -> RunPlan | None:
        """Record that a run's canvas could not be sent; returns the package's next run, now started."""
        with self.transaction() as s:
            ended = lifecycle.fail_dispatch(s, run_id, now, error)
            return None if ended is None else ended.next_run

    def close_run(self, run_id: int, now: datetime) -> RunClosed | None:
        """Finish the run once all its jobs have; apply FINISH_THEN_STOP. None if nothing to do.

        The package's next queued run, if any, is started, and returned in ``RunClosed.next_run``.
        """
        return self.writer.close_run(run_id, now)


@functools.cache
def _packages_locked() -> Select[str, str, bool, int, Any]:
    """The packages of ``names`` with their entries, one row per entry, locked in name order (so that two
    transactions starting runs of the same packages do not deadlock)."""
    has_rules = exists().where(NotificationRuleRow.package_id == PackageRow.id).label("has_rules")
    return (
        select(PackageRow.name, PackageRow.on_error, has_rules, PackageRow.id, EntryRow.definition)
        .outerjoin(EntryRow, EntryRow.package_id == PackageRow.id)
        .where(PackageRow.name.in_(bindparam("p_names", expanding=True)))
        .order_by(PackageRow.name, EntryRow.position)
        .with_for_update(of=PackageRow)
    )


def _startable(w: Writes, rows: Sequence[Any]) -> dict[str, Package]:
    """What starting a run needs of each package, from ``_packages_locked``'s rows: its entries, its On
    Error policy and its notification rules (read only for packages that have some), not its
    recurrences."""
    entries: dict[str, list[Entry]] = {}
    for row in rows:
        package_entries = entries.setdefault(row.name, [])
        if row.definition is not None:
            package_entries.append(Entry.from_dict(row.definition))
    with_rules = {row.id: row.name for row in rows if row.has_rules}
    rules: dict[str, list[Any]] = {}
    if with_rules:
        for rule in w.rows(_rules_of(), {"p_package_ids": list(with_rules)}):
            rules.setdefault(with_rules[rule.package_id], []).append(rule_from_dict(rule.definition))
    on_error = {row.name: OnError(row.on_error) for row in rows}
    return {
        name: Package(name, entries=listed, on_error=on_error[name], notifications=rules.get(name, ()))
        for name, listed in entries.items()
    }


@functools.cache
def _rules_of() -> Select[int, Any]:
    """The notification rules of the packages of ids ``p_package_ids``, in their order."""
    return (
        select(NotificationRuleRow.package_id, NotificationRuleRow.definition)
        .where(NotificationRuleRow.package_id.in_(bindparam("p_package_ids", expanding=True)))
        .order_by(NotificationRuleRow.package_id, NotificationRuleRow.position)
    )


@functools.cache
def _package_names() -> Select[str]:
    return select(PackageRow.name)


def _refuse_unknown(w: Writes, names: Sequence[str], found: set[str]) -> None:
    unknown = [name for name in dict.fromkeys(names) if name not in found]
    if not unknown:
        return
    existing = [row.name for row in w.rows(_package_names(), {})]
    raise NotFoundError(
        "; ".join(f"package '{name}' does not exist{did_you_mean(name, existing)}" for name in unknown)
        + ("; no run was started" if len(set(names)) > 1 else "")
    )


def _run(row: RunRow, jobs: tuple[Any, ...]) -> Run:
    return Run(
        id=row.id,
        package=row.package_name,
        status=RunStatus(row.status),
        trigger=row.trigger,
        stop_reason=row.stop_reason,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        jobs=jobs,
    )
