"""The store's scheduling transactions: claim due recurrences, start their runs, recover unsent runs.

Each function is one transaction through ``Store.transaction()``. A tick reads only recurrences whose
indexed ``next_fire_at`` has passed, so its cost follows the number of due recurrences, not the number
stored. On PostgreSQL concurrent beats claim rows with ``FOR UPDATE SKIP LOCKED``; on SQLite, where every
write transaction is serialised anyway, a lease row lets one beat tick while the others wait.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from sqlalchemy.orm import Session

from jqm_celery.definitions import Entry, Package
from jqm_celery.errors import JQMError, StateError
from jqm_celery.plans import RunPlan
from jqm_celery.recurrence import CatchUp, Recurrence
from jqm_celery.statuses import JobStatus, LogKind, OnError, PackageStatus, RunStatus
from jqm_celery.store import lifecycle, log, writers
from jqm_celery.store.beat_models import BeatLeaseRow, FireRow
from jqm_celery.store.log import LogLine
from jqm_celery.store.models import EntryRow, JobRow, PackageRow, RecurrenceRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow
from jqm_celery.store.package_rows import definition
from jqm_celery.store.store import Store

logger = logging.getLogger("jqm_celery.beat")

RECURRENCE_TRIGGER = "recurrence"
OVERLAP_MESSAGE = "previous run still running"

_LEASE = "beat"
_IN_FLIGHT = (RunStatus.RUNNING, RunStatus.QUEUED)
# Counting missed instants for the log message stops here: a long outage of a short interval is "1000+".
_MISSED_COUNT_LIMIT = 1000


class FireOutcome(StrEnum):
    """What one due instant of a recurrence led to."""

    STARTED = "STARTED"
    QUEUED = "QUEUED"  # behind a run in flight (allow_overlap)
    OVERLAP_SKIPPED = "OVERLAP_SKIPPED"
    MISSED_SKIPPED = "MISSED_SKIPPED"  # catch-up SKIP after beat was down


@dataclass(frozen=True)
class TickResult:
    """What one tick claimed: the runs to send now, whether more are due, and when the next one is."""

    plans: tuple[RunPlan, ...]
    claimed: int
    more_due: bool
    next_due_at: datetime | None
    leader: bool = True


@dataclass(frozen=True)
class _Due:
    recurrence_id: int
    package_id: int
    package: str
    recurrence: Recurrence
    due_at: datetime
    catch_up: CatchUp
    allow_overlap: bool
    on_error: OnError
    #: Whether the package has notification rules (its listeners need not look them up otherwise).
    notifies: bool


@dataclass
class _Decision:
    """One package's due recurrences in this tick, and the one run (or none) they lead to."""

    dues: list[_Due]
    wants_run: bool
    missed: int  # instants due since the first missed one (0: nothing was missed)

    @property
    def first(self) -> _Due:
        return self.dues[0]


def fire_due(
    store: Store,
    now: datetime,
    *,
    grace: timedelta,
    limit: int = 500,
    holder: str | None = None,
    lease_ttl: timedelta = timedelta(seconds=5),
) -> TickResult:
    """Claim up to ``limit`` due recurrences, insert their runs and advance their next fire time.

    A due instant older than ``grace`` counts as missed (beat was down): with catch-up ONCE the package
    gets one run for all its missed instants, with SKIP none — unless an instant within ``grace`` is due
    too. Several recurrences of one package due in the same tick give one run. A package with a run in
    flight skips the fire with a log entry, or queues one run behind it when ``allow_overlap`` is set.
    The returned plans are committed and must be sent, then passed to :func:`mark_sent`.
    """
    with store.transaction() as s:
        if store.writer.ticks_take_turns and not _hold_lease(s, holder or "beat", now, lease_ttl):
            return TickResult((), 0, False, None, leader=False)
        dues, claimed = _claim(s, now, limit)
        plans = _fire_isolated(s, dues, now, grace) if dues else []
        next_due_at = s.scalar(select(func.min(RecurrenceRow.next_fire_at)))
        return TickResult(tuple(plans), claimed, claimed >= limit, next_due_at)


def release_lease(store: Store, holder: str) -> None:
    """Give up the SQLite beat lease if ``holder`` has it, so another beat ticks at once.

    Without this a stopped beat's lease would block the others until it expires, by the stopped beat's
    clock. A lease another beat holds by now is left alone.
    """
    if not store.writer.ticks_take_turns:
        return
    with store.transaction() as s:
        s.execute(delete(BeatLeaseRow).where(BeatLeaseRow.name == _LEASE, BeatLeaseRow.holder == holder))


def mark_sent(store: Store, sent: Sequence[tuple[Sequence[int], datetime]]) -> None:
    """Record when runs' canvases reached the broker (or failed for good): nothing to recover.

    ``sent``: run ids and the time they were sent, for each batch sent; one transaction for them all.
    """
    rows = [{"run_id": run_id, "sent_at": at} for run_ids, at in sent for run_id in run_ids]
    if not rows:
        return
    with store.transaction() as s:
        writers.of(s).update_rows(s.connection(), FireRow, rows, key="run_id")


def recover_unsent(store: Store, now: datetime, *, older_than: timedelta, limit: int = 100) -> list[RunPlan]:
    """Replace runs a beat inserted but may not have sent before it died; returns the plans to send.

    A run whose jobs have not started yet is retired (its jobs skipped, so a canvas of it that did reach
    the broker does nothing) and a replacement run is inserted for the same fire: the fire is neither
    lost nor run twice. A run with a started job was sent, and is only marked so.
    """
    cutoff = now - older_than
    with store.transaction() as s:
        unsent = s.scalars(
            select(FireRow.run_id)
            .where(FireRow.sent_at.is_(None), FireRow.run_id.is_not(None), FireRow.fired_at < cutoff)
            .order_by(FireRow.fired_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        plans = []
        for run_id in sorted({run_id for run_id in unsent if run_id is not None}):
            plan = _replace_unsent(s, run_id, now)
            if plan is not None:
                plans.append(plan)
        return plans


def start_package_run(store: Store, name: str, trigger: str, now: datetime) -> tuple[RunPlan | None, bool]:
    """Start a run of an ACTIVE package for an external scheduler; returns (plan, start now).

    The package's overlap rule applies: with a run in flight the fire is skipped with a log entry
    (plan None), or queued behind it when ``allow_overlap`` is set.
    """
    with store.transaction() as s:
        row = s.scalar(select(PackageRow).where(PackageRow.name == name).with_for_update())
        if row is None:
            return None, False
        if row.status != PackageStatus.ACTIVE:
            raise StateError(
                f"package '{name}' is {row.status}: {trigger} started no run; activate it first "
                f"(jqm.activate('{name}'))"
            )
        package = definition(s, row)
        in_flight = lifecycle.in_flight(writers.SessionWrites(s), [name])[name]
        if in_flight and (not package.allow_overlap or RunStatus.QUEUED in in_flight):
            log.write(s, [_skip_line(name, now, _overlap_reason(package.allow_overlap), trigger)])
            return None, False
        start_now = not in_flight
        plan, _ = lifecycle.open_run(writers.SessionWrites(s), package, trigger, now, start_now=start_now)
        return plan, start_now


# -- the tick ------------------------------------------------------------------------------------


def _hold_lease(s: Session, holder: str, now: datetime, ttl: timedelta) -> bool:
    lease = s.get(BeatLeaseRow, _LEASE, with_for_update=True)
    if lease is None:
        s.add(BeatLeaseRow(name=_LEASE, holder=holder, expires_at=now + ttl))
        return True
    if lease.holder != holder and lease.expires_at > now:
        return False
    lease.holder = holder
    lease.expires_at = now + ttl
    return True


def _claim(s: Session, now: datetime, limit: int) -> tuple[list[_Due], int]:
    """The due recurrences claimed, and how many rows were (a package whose rows do not read is stopped)."""
    rows = s.execute(
        select(
            RecurrenceRow.id,
            RecurrenceRow.package_id,
            RecurrenceRow.spec,
            RecurrenceRow.next_fire_at,
            PackageRow.name,
            PackageRow.catch_up,
            PackageRow.allow_overlap,
            PackageRow.on_error,
            exists().where(NotificationRuleRow.package_id == PackageRow.id).label("notifies"),
        )
        .join(PackageRow, PackageRow.id == RecurrenceRow.package_id)
        .where(RecurrenceRow.next_fire_at <= now, PackageRow.status == PackageStatus.ACTIVE)
        .order_by(RecurrenceRow.next_fire_at, RecurrenceRow.id)
        .limit(limit)
        .with_for_update(of=RecurrenceRow, skip_locked=True)
    ).all()
    dues: list[_Due] = []
    unreadable: dict[str, Exception] = {}
    for row in rows:
        try:
            recurrence = Recurrence.from_dict(row.spec)
            catch_up, on_error = CatchUp(row.catch_up), OnError(row.on_error)
        except Exception as exc:
            if not _is_package_fault(exc):
                raise
            unreadable.setdefault(row.name, exc)
            continue
        dues.append(
            _Due(
                recurrence_id=row.id,
                package_id=row.package_id,
                package=row.name,
                recurrence=recurrence,
                due_at=row.next_fire_at,
                catch_up=catch_up,
                allow_overlap=row.allow_overlap,
                on_error=on_error,
                notifies=row.notifies,
            )
        )
    for package, cause in unreadable.items():
        _stop_unfireable(s, package, now, cause)
    return [due for due in dues if due.package not in unreadable], len(rows)


def _fire_isolated(s: Session, dues: list[_Due], now: datetime, grace: timedelta) -> list[RunPlan]:
    """Fire the dues together; if that fails, one package at a time, each in a savepoint.

    A package whose run cannot be built or inserted (a definition stored before the checks it now fails,
    a value its database refuses) is stopped — ACTIVE → ERROR with the reason, which notifies — and the
    others fire: one bad package never keeps the rest from running.
    """
    try:
        with s.begin_nested():
            return _fire(s, dues, now, grace)
    except Exception as exc:
        if not _is_package_fault(exc):
            raise
    by_package: dict[int, list[_Due]] = defaultdict(list)
    for due in dues:
        by_package[due.package_id].append(due)
    plans: list[RunPlan] = []
    for group in by_package.values():
        try:
            with s.begin_nested():
                plans += _fire(s, group, now, grace)
        except Exception as exc:
            if not _is_package_fault(exc):
                raise
            _stop_unfireable(s, group[0].package, now, exc)
    return plans


def _is_package_fault(exc: Exception) -> bool:
    """Whether ``exc`` comes from one package's data, not from the database being unreachable or busy."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, DataError)
    return isinstance(exc, JQMError | StatementError | ValueError | TypeError | KeyError)


def _stop_unfireable(s: Session, package: str, now: datetime, exc: Exception) -> None:
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    reason = f"beat could not start its run ({detail})"
    logger.error("beat: package '%s' stopped: %s; the other packages fire as usual", package, reason)
    lifecycle.stop_package(s, package, now, None, reason)


def _fire(s: Session, dues: list[_Due], now: datetime, grace: timedelta) -> list[RunPlan]:
    by_package: dict[int, list[_Due]] = defaultdict(list)
    for due in dues:
        by_package[due.package_id].append(due)
    decisions = {package_id: _decide(group, now, grace) for package_id, group in by_package.items()}
    wanted = [d for d in decisions.values() if d.wants_run]
    in_flight: dict[str, set[str]] = defaultdict(set)
    if wanted:
        in_flight.update(lifecycle.in_flight(writers.SessionWrites(s), [d.first.package for d in wanted]))
    entries = _entries(s, [d.first.package_id for d in wanted if _may_start(d, in_flight)])

    openings: dict[int, lifecycle.Opening] = {}
    outcomes: dict[int, FireOutcome] = {}
    skips: list[LogLine] = []
    for package_id, decision in decisions.items():
        first = decision.first
        if not decision.wants_run:
            outcomes[package_id] = FireOutcome.MISSED_SKIPPED
            skips.append(_skip_line(first.package, now, _missed_reason(decision, first), RECURRENCE_TRIGGER))
            continue
        if not _may_start(decision, in_flight):
            outcomes[package_id] = FireOutcome.OVERLAP_SKIPPED
            reason = _overlap_reason(first.allow_overlap)
            skips.append(_skip_line(first.package, now, reason, RECURRENCE_TRIGGER))
            continue
        start_now = not in_flight[first.package]
        package = Package(first.package, entries=entries[package_id], on_error=first.on_error)
        message = _started_message(decision) if start_now else None
        openings[package_id] = lifecycle.Opening(package, start_now, message, notifies=first.notifies)
        outcomes[package_id] = FireOutcome.STARTED if start_now else FireOutcome.QUEUED
    log.write(s, skips)
    opened = lifecycle.open_runs(writers.SessionWrites(s), list(openings.values()), RECURRENCE_TRIGGER, now)
    plans = {package_id: plan for package_id, (plan, _) in zip(openings, opened, strict=True)}
    started = {package_id for package_id, opening in openings.items() if opening.start_now}
    fires: list[dict[str, object]] = []
    advances = []
    for package_id, decision in decisions.items():
        fired = plans[package_id].run_id if package_id in plans else None
        for due in decision.dues:
            fires.append(
                {
                    "recurrence_id": due.recurrence_id,
                    "package_name": due.package,
                    "due_at": due.due_at,
                    "fired_at": now,
                    "run_id": fired,
                    "outcome": outcomes[package_id],
                    # A queued run is sent by the run before it, not by beat.
                    "sent_at": None if package_id in started else now,
                }
            )
            advance: dict[str, object] = {
                "id": due.recurrence_id,
                "next_fire_at": due.recurrence.next_after(now),
            }
            if fired is not None:
                advance["last_fire_at"] = due.due_at
            advances.append(advance)
    writers.of(s).add_rows(s.connection(), FireRow, fires)
    _advance(s, [a for a in advances if "last_fire_at" in a])
    _advance(s, [a for a in advances if "last_fire_at" not in a])
    # A queued run is sent by the run before it, not by beat.
    return [plan for package_id, plan in plans.items() if package_id in started]


def _advance(s: Session, values: list[dict[str, object]]) -> None:
    # One UPDATE by primary key for the whole tick.
    writers.of(s).update_rows(s.connection(), RecurrenceRow, values)


def _decide(dues: list[_Due], now: datetime, grace: timedelta) -> _Decision:
    horizon = now - grace
    on_time = False
    missed = 0
    for due in dues:
        if due.due_at > horizon:
            on_time = True
            continue
        missed += _count_due(due.recurrence, due.due_at, now)
        following = due.recurrence.next_after(horizon)
        if following is not None and following <= now:
            on_time = True
    catch_up = dues[0].catch_up
    return _Decision(dues, on_time or catch_up is CatchUp.ONCE, missed)


def _count_due(recurrence: Recurrence, first: datetime, now: datetime) -> int:
    count = 0
    instant: datetime | None = first
    while instant is not None and instant <= now and count < _MISSED_COUNT_LIMIT:
        count += 1
        instant = recurrence.next_after(instant)
    return count


def _may_start(decision: _Decision, in_flight: dict[str, set[str]]) -> bool:
    statuses = in_flight.get(decision.first.package, set())
    if not statuses:
        return True
    return decision.first.allow_overlap and RunStatus.QUEUED not in statuses


def _entries(s: Session, package_ids: list[int]) -> dict[int, list[Entry]]:
    entries: dict[int, list[Entry]] = defaultdict(list)
    if package_ids:
        # Columns, not ORM objects: a tick may read thousands of entries, and loading them as objects
        # costs more than the query.
        rows = s.execute(
            select(EntryRow.package_id, EntryRow.definition)
            .where(EntryRow.package_id.in_(package_ids))
            .order_by(EntryRow.position)
        )
        for package_id, definition in rows:
            entries[package_id].append(Entry.from_dict(definition))
    return entries


def _missed_count_text(count: int) -> str:
    return f"{count}+" if count >= _MISSED_COUNT_LIMIT else str(count)


def _missed_reason(decision: _Decision, first: _Due) -> str:
    return (
        f"{_missed_count_text(decision.missed)} missed fire time(s) since {first.due_at.isoformat()} "
        "skipped (catch-up SKIP)"
    )


def _overlap_reason(allow_overlap: bool) -> str:
    if allow_overlap:
        return f"{OVERLAP_MESSAGE} and a run is already queued behind it"
    return OVERLAP_MESSAGE


def _started_message(decision: _Decision) -> str:
    if decision.missed:
        return (
            f"run started ({RECURRENCE_TRIGGER}; one run for {_missed_count_text(decision.missed)} "
            f"missed fire time(s) since {decision.first.due_at.isoformat()}, catch-up ONCE)"
        )
    return f"run started ({RECURRENCE_TRIGGER}, due {decision.first.due_at.isoformat()})"


def _skip_line(package: str, now: datetime, reason: str, trigger: str) -> LogLine:
    return LogLine(
        LogKind.FIRE_SKIPPED, "SKIPPED", now, package, message=f"no run started ({trigger}): {reason}"
    )


# -- recovery --------------------------------------------------------------------------------------


def _replace_unsent(s: Session, run_id: int, now: datetime) -> RunPlan | None:
    """Retire an unsent run and start its replacement (or, if its package is no longer ACTIVE, the
    package's next queued run); the plan to send, if any."""
    run = s.get(RunRow, run_id, with_for_update=True)
    # Locking the jobs waits for a worker that is claiming one right now, so what we read is final.
    jobs = list(s.scalars(select(JobRow).where(JobRow.run_id == run_id).with_for_update()))
    untouched = all(job.status == JobStatus.QUEUED and job.attempts == 0 for job in jobs)
    if run is None or run.status != RunStatus.RUNNING or run.stop_reason is not None or not untouched:
        s.execute(update(FireRow).where(FireRow.run_id == run_id).values(sent_at=now))
        return None
    package_row = s.scalar(select(PackageRow).where(PackageRow.name == run.package_name))
    replacement: RunPlan | None = None
    if package_row is not None and package_row.status == PackageStatus.ACTIVE:
        message = f"run started ({RECURRENCE_TRIGGER}, replacing run {run.id})"
        package = definition(s, package_row)
        replacement, _ = lifecycle.open_run(
            writers.SessionWrites(s), package, RECURRENCE_TRIGGER, now, start_now=True, message=message
        )
    reason = "the beat that started this run stopped before it was known to be sent; " + (
        f"run {replacement.run_id} replaces it"
        if replacement is not None
        else "the package is no longer ACTIVE"
    )
    for job in jobs:
        job.status = JobStatus.SKIPPED
        job.finished_at = now
    ended = lifecycle.end(s, run, RunStatus.STOPPED, now, message=f"run stopped: {reason}", reason=reason)
    if replacement is None:
        s.execute(update(FireRow).where(FireRow.run_id == run_id).values(sent_at=now))
        return ended.next_run
    s.execute(update(FireRow).where(FireRow.run_id == run_id).values(run_id=replacement.run_id))
    return replacement
