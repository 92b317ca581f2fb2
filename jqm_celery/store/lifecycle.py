"""The run's state machine: every change of a run's status is one of the transitions below.

::

    (new) ──open──▶ RUNNING ──end──▶ SUCCEEDED | FAILED | STOPPED
      │                ▲
      └──open──▶ QUEUED ──start_queued──┘   QUEUED ──stop / end──▶ STOPPED

``open`` inserts a run RUNNING, or QUEUED behind a run of its package in flight. ``stop`` (a hold, On
Error STOP, a cancel) marks a run as stopping and skips its waiting jobs: a running job finishes, nothing
else of the run starts. ``end`` gives a run its final status — its jobs have all finished (``close``),
it was cancelled, its canvas could not be sent, or beat replaced it — and then starts the package's next
queued run, whatever the cause of the end: the returned plan is that run's, for the caller to send.

Every function works inside the caller's transaction (``Store.transaction()``; ``open`` and ``in_flight``
take its ``writers.Writes``, as starting runs runs them on the writer's own connection), and writes its
log entries through ``log.write`` (``Writes.log``), so their events reach the listeners once it commits.
The close of a run on the kept connection (``writers._DriverWriter.close_run``) is the same ``close``
written as statements on the driver, and ends in ``start_next`` as this one does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, select, update
from sqlalchemy.orm import Session

from jqm_celery.definitions import Package
from jqm_celery.plans import JobPlan, RunClosed, RunPlan, error_policy
from jqm_celery.records import Run
from jqm_celery.statuses import (
    FINISHED_JOB,
    WAITING_JOB,
    JobStatus,
    LogKind,
    OnError,
    PackageStatus,
    RunStatus,
)
from jqm_celery.store import convert, log, statements, writers
from jqm_celery.store.models import JobRow, PackageRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow
from jqm_celery.store.package_rows import reschedule

_WAITING = [s.value for s in WAITING_JOB]
_FINISHED = [s.value for s in FINISHED_JOB]
IN_FLIGHT = (RunStatus.RUNNING, RunStatus.QUEUED)


@dataclass(frozen=True)
class Ended:
    """A run that ``end`` finished, and the package's next run it started (to send), if any."""

    status: RunStatus
    next_run: RunPlan | None


# -- open ------------------------------------------------------------------------------------------


def in_flight(w: writers.Writes, packages: Sequence[str]) -> dict[str, set[str]]:
    """The statuses of the packages' runs in flight, locked.

    Locking them orders this transaction with a run's ``end``: a run that is ending now is read once its
    end has committed (no longer in flight), and an end that comes later sees the run inserted here.
    Without it, a run queued while the one before it ends would wait for an end that has already passed.
    """
    found: dict[str, set[str]] = {name: set() for name in packages}
    if not packages:
        return found
    for package, status in w.rows(_in_flight_locked(), {"p_packages": list(packages)}):
        found[package].add(status)
    return found


@functools.cache
def _in_flight_locked() -> Select[str, str]:
    """The runs in flight of the packages of parameter ``p_packages`` (a list), locked: built once."""
    return (
        select(RunRow.package_name, RunRow.status)
        .where(RunRow.package_name.in_(bindparam("p_packages", expanding=True)), RunRow.status.in_(IN_FLIGHT))
        .with_for_update()
    )


def run_values(package: Package, trigger: str, now: datetime, *, start_now: bool) -> dict[str, Any]:
    """A new run's columns: RUNNING from ``now``, or QUEUED behind a run in flight."""
    return {
        "package_name": package.name,
        "status": RunStatus.RUNNING if start_now else RunStatus.QUEUED,
        "trigger": trigger,
        "on_error": package.on_error,
        "created_at": now,
        "started_at": now if start_now else None,
    }


def job_values(run_id: int, package: Package, now: datetime) -> list[dict[str, Any]]:
    """The columns of one QUEUED job per entry of ``package``, for run ``run_id``."""
    return [
        {
            "run_id": run_id,
            "package_name": package.name,
            "position": position,
            "task": entry.task,
            "args": list(entry.args),
            "kwargs": dict(entry.kwargs),
            "run_order": entry.run_order,
            "queue": entry.queue,
            "retry_policy": entry.retry.to_dict(),
            "soft_time_limit_s": _seconds(entry.soft_time_limit),
            "time_limit_s": _seconds(entry.time_limit),
            "description": entry.description,
            "status": JobStatus.QUEUED,
            "max_retries": entry.retry.max_retries,
            "created_at": now,
        }
        for position, entry in enumerate(package.entries, start=1)
    ]


def started_line(run_id: int, package: str, now: datetime, message: str, *, notify: bool) -> log.LogLine:
    """The RUN_STARTED entry of a run, whatever started it."""
    return log.LogLine(
        LogKind.RUN_STARTED, RunStatus.RUNNING, now, package, run_id, message=message, notify=notify
    )


@dataclass(frozen=True)
class Opening:
    """One run to open: its package, whether it starts now (else it is QUEUED behind a run in flight),
    the text of its RUN_STARTED entry, and whether that entry notifies."""

    package: Package
    start_now: bool
    #: The RUN_STARTED entry's text; "run started (trigger)" if None.
    message: str | None = None
    #: Whether the package has notification rules; those of ``package`` decide if None (beat reads only
    #: whether rules exist, not the rules).
    notifies: bool | None = None


def open_run(
    w: writers.Writes,
    package: Package,
    trigger: str,
    now: datetime,
    *,
    start_now: bool,
    message: str | None = None,
) -> tuple[RunPlan, Run]:
    """Insert a run of ``package`` and one QUEUED job per entry; a started run is logged as such.

    Returns the run's plan and its record, built from what was inserted rather than read back.
    """
    [opened] = open_runs(w, [Opening(package, start_now, message)], trigger, now)
    return opened


def open_runs(
    w: writers.Writes, openings: Sequence[Opening], trigger: str, now: datetime
) -> list[tuple[RunPlan, Run]]:
    """``open_run`` of each opening at once: the runs inserted together, then all their jobs, then the
    started runs' log entries, whatever the number of runs (``Writes.insert_rows``: on PostgreSQL one
    statement for many rows of a table). Every way a run is opened — ``run_now``, an external scheduler,
    beat's tick, beat's replacement of an unsent run — goes through here."""
    if not openings:
        return []
    runs = [run_values(o.package, trigger, now, start_now=o.start_now) for o in openings]
    run_ids = w.insert_rows(RunRow, runs)
    jobs = [job_values(run_id, o.package, now) for run_id, o in zip(run_ids, openings, strict=True)]
    job_ids = iter(w.insert_rows(JobRow, [job for each in jobs for job in each]))
    default = f"run started ({trigger})"
    w.log(
        [
            started_line(run_id, o.package.name, now, o.message or default, notify=_notify(o))
            for run_id, o in zip(run_ids, openings, strict=True)
            if o.start_now
        ],
    )
    opened = []
    for run_id, o, values, package_jobs in zip(run_ids, openings, runs, jobs, strict=True):
        ids = [next(job_ids) for _ in package_jobs]
        run = Run(
            id=run_id,
            package=o.package.name,
            status=RunStatus(values["status"]),
            trigger=trigger,
            stop_reason=None,
            created_at=now,
            started_at=values["started_at"],
            finished_at=None,
            jobs=tuple(convert.new_job(job_id, job) for job_id, job in zip(ids, package_jobs, strict=True)),
        )
        opened.append((plan_of(run_id, o.package.name, ids, package_jobs), run))
    return opened


def _notify(opening: Opening) -> bool:
    return bool(opening.package.notifications) if opening.notifies is None else opening.notifies


# -- QUEUED → RUNNING ------------------------------------------------------------------------------


def start_queued(s: Session, run_id: int, now: datetime) -> RunPlan | None:
    """Start a queued run; None if it is no longer queued."""
    run = s.get(RunRow, run_id, with_for_update=True)
    if run is None or run.status != RunStatus.QUEUED:
        return None
    run.status = RunStatus.RUNNING
    run.started_at = now
    jobs = s.scalars(select(JobRow).where(JobRow.run_id == run_id).order_by(JobRow.position)).all()
    message = f"run started ({run.trigger}, after the previous run)"
    log.write(
        s, [started_line(run.id, run.package_name, now, message, notify=_notifies(s, run.package_name))]
    )
    return plan(run, jobs)


def start_next(s: Session, package: str, now: datetime) -> RunPlan | None:
    """Start the package's oldest queued run, unless one of its runs is running."""
    s.flush()  # the looks below are Core, on the session's connection: they see what the session changed
    conn = s.connection()
    params = {"p_package": package}
    if conn.execute(statements.running_run(), params).first() is not None:
        return None
    next_id = conn.execute(statements.next_queued_run_locked(), params).scalar()
    return None if next_id is None else start_queued(s, next_id, now)


# -- stopping: hold, On Error STOP, cancel ---------------------------------------------------------


def stop(s: Session, run: RunRow, now: datetime, reason: str, kind: LogKind) -> int:
    """The run stops: its waiting jobs are skipped (a running one finishes); a queued run ends STOPPED.

    Returns the number of jobs skipped. A queued run ended here starts no other run: it was behind a
    run in flight, which starts the next one when it ends.
    """
    run.stop_reason = run.stop_reason or reason
    skipped = skip_waiting_jobs(s, run, now, f"skipped: {reason}")
    log.write(
        s,
        [
            log.LogLine(
                kind,
                RunStatus.STOPPED,
                now,
                run.package_name,
                run.id,
                message=f"{reason}: {skipped} job(s) will not start",
            )
        ],
    )
    if run.status == RunStatus.QUEUED:
        run.status = RunStatus.STOPPED
        run.finished_at = now
    return skipped


def skip_waiting_jobs(s: Session, run: RunRow, now: datetime, message: str) -> int:
    skipped = s.execute(
        update(JobRow)
        .where(JobRow.run_id == run.id, JobRow.status.in_(_WAITING))
        .values(status=JobStatus.SKIPPED, finished_at=now)
        .returning(JobRow.id, JobRow.task, JobRow.run_order)
    ).all()
    log.write(
        s,
        (
            log.LogLine(
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                run.package_name,
                run.id,
                job_id,
                task,
                run_order=run_order,
                message=message,
            )
            for job_id, task, run_order in skipped
        ),
    )
    return len(skipped)


def apply_error_policy(s: Session, run_id: int, now: datetime, reason: str) -> OnError | None:
    """A job of the run failed for good: skip the rest now (STOP) or flag the package to stop later.

    None if the run does not exist.
    """
    run = s.get(RunRow, run_id, with_for_update=True)
    if run is None:
        return None
    policy = OnError(run.on_error)
    skip_now, stop_package_after = error_policy(policy)
    if skip_now and run.stop_reason is None:
        run.stop_reason = reason
        skip_waiting_jobs(s, run, now, "skipped: an earlier job failed (On Error: STOP)")
        stop_package(s, run.package_name, now, run_id, f"{reason} (On Error: STOP)")
    elif stop_package_after:
        run.stop_package_after = True
    return policy


def stop_package(s: Session, name: str, now: datetime, run_id: int | None, reason: str) -> bool:
    """ACTIVE → ERROR; False if the package was not ACTIVE (e.g. a DRAFT being tried)."""
    changed = s.execute(
        update(PackageRow)
        .where(and_(PackageRow.name == name, PackageRow.status == PackageStatus.ACTIVE))
        .values(status=PackageStatus.ERROR, updated_at=now)
        .returning(PackageRow.id)
    ).first()
    if changed is None:
        return False
    reschedule(s, changed.id, None)
    message = f"package stopped: {reason}; fix the cause and activate it again"
    log.write(
        s, [log.LogLine(LogKind.PACKAGE_STOPPED, PackageStatus.ERROR, now, name, run_id, message=message)]
    )
    return True


# -- the end ---------------------------------------------------------------------------------------


def end(
    s: Session,
    run: RunRow,
    status: RunStatus,
    now: datetime,
    *,
    message: str,
    reason: str | None = None,
    error: str | None = None,
    notify: bool | None = None,
) -> Ended:
    """Give a run in flight its final status, log it, and start the package's next queued run."""
    run.status = status
    run.finished_at = now
    if reason is not None and run.stop_reason is None:
        run.stop_reason = reason
    if notify is None:
        notify = _notifies(s, run.package_name)
    return _ended(s, run.package_name, run.id, status, now, message=message, error=error, notify=notify)


def _ended(
    s: Session,
    package: str,
    run_id: int,
    status: RunStatus,
    now: datetime,
    *,
    message: str,
    error: str | None = None,
    notify: bool,
) -> Ended:
    """What follows a run's final status, however it was written: its RUN_FINISHED entry, then the start
    of the package's next queued run."""
    line = log.LogLine(
        LogKind.RUN_FINISHED, status, now, package, run_id, error=error, message=message, notify=notify
    )
    log.write(s, [line])
    return Ended(status, start_next(s, package, now))


def close(s: Session, run_id: int, now: datetime) -> RunClosed | None:
    """End the run once all its jobs have finished; apply FINISH_THEN_STOP. None if nothing to do."""
    conn = s.connection()
    locked = conn.execute(statements.lock_run(), {"p_run_id": run_id}).one_or_none()
    if locked is None or RunStatus(locked.status).finished:
        return None
    counts: dict[str, int] = dict(conn.execute(statements.job_counts(), {"p_run_id": run_id}).all())
    if any(status not in _FINISHED for status in counts):
        return None
    status = outcome(counts)
    message = finished_message(status, counts)
    if locked.stop_package_after:
        run = s.get_one(RunRow, run_id)
        ended = end(s, run, status, now, message=message, notify=locked.notifies)
        reason = "a job failed; the run finished (FINISH_THEN_STOP)"
        stopped = stop_package(s, run.package_name, now, run_id, reason)
        return RunClosed(run_id, run.package_name, status, stopped, ended.next_run)
    # ``end`` with the run's status written by one Core UPDATE: this runs once per run, on the worker
    # (every database but PostgreSQL and SQLite, whose writers close on the driver), and the ORM's load
    # and flush of the run would cost several times the statement.
    package = locked.package_name
    conn.execute(statements.finish_run(), {"p_run_id": run_id, "p_status": status, "p_now": now})
    ended = _ended(s, package, run_id, status, now, message=message, notify=locked.notifies)
    return RunClosed(run_id, package, status, False, ended.next_run)


def outcome(counts: Mapping[str, int]) -> RunStatus:
    """The status of a run whose jobs have all finished, from the number of jobs in each status."""
    if counts.get(JobStatus.ERROR) or counts.get(JobStatus.ABORTED):
        return RunStatus.FAILED
    if counts.get(JobStatus.SKIPPED) or counts.get(JobStatus.CANCELLED):
        return RunStatus.STOPPED
    return RunStatus.SUCCEEDED


def finished_message(status: RunStatus, counts: Mapping[str, int]) -> str:
    summary = ", ".join(f"{n} {st.lower()}" for st, n in sorted(counts.items()))
    return f"run finished: {status} ({summary})"


def fail_dispatch(s: Session, run_id: int, now: datetime, error: str) -> Ended | None:
    """A run's canvas could not be sent: its jobs will never start, and it ends FAILED."""
    run = s.get(RunRow, run_id, with_for_update=True)
    if run is None or RunStatus(run.status).finished:
        return None
    s.execute(
        update(JobRow)
        .where(JobRow.run_id == run_id, JobRow.status.in_(_WAITING))
        .values(status=JobStatus.SKIPPED, finished_at=now, error=error)
    )
    message = "run could not be sent to the broker"
    return end(s, run, RunStatus.FAILED, now, message=message, reason=error, error=error)


# -- plans -----------------------------------------------------------------------------------------


def plan(run: RunRow, jobs: Sequence[JobRow]) -> RunPlan:
    return RunPlan(
        run_id=run.id,
        package=run.package_name,
        jobs=tuple(job_plan(j) for j in jobs),
    )


def job_plan(job: Any) -> JobPlan:
    """The plan of one job, from its row or a row of the same columns read with Core."""
    return JobPlan(
        job.id,
        job.task,
        job.run_order,
        job.queue,
        job.soft_time_limit_s,
        job.time_limit_s,
        tuple(job.args or ()),
        dict(job.kwargs or {}),
    )


def plan_of(run_id: int, package: str, job_ids: Sequence[int], jobs: Sequence[Mapping[str, Any]]) -> RunPlan:
    """The plan of a run inserted as column values (``job_values``) with the ids they were given."""
    return RunPlan(
        run_id=run_id,
        package=package,
        jobs=tuple(
            JobPlan(
                job_id,
                j["task"],
                j["run_order"],
                j["queue"],
                j["soft_time_limit_s"],
                j["time_limit_s"],
                tuple(j["args"]),
                dict(j["kwargs"]),
            )
            for job_id, j in zip(job_ids, jobs, strict=True)
        ),
    )


def _notifies(s: Session, package: str) -> bool:
    return bool(
        s.scalar(
            select(
                exists().where(NotificationRuleRow.package_id == PackageRow.id, PackageRow.name == package)
            )
        )
    )


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value.total_seconds())
