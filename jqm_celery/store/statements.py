"""The store's hot-path statements, built once with bound parameters (named p_*: INSERT and UPDATE reserve
the column names): building and hashing a statement of this size on every call costs more CPU than
executing it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Select, Update, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from jqm_celery.plans import ClaimedJob
from jqm_celery.statuses import FINISHED_JOB, WAITING_JOB, AttemptStatus, JobStatus, LogKind, RunStatus
from jqm_celery.store import one_statement
from jqm_celery.store.models import Base, JobRow, LogEntryRow, PackageRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow
from jqm_celery.store.queue_models import QueueRow

_WAITING = [s.value for s in WAITING_JOB]
_FINISHED = [s.value for s in FINISHED_JOB]


@functools.cache
def claim(redelivered: bool) -> Update:
    """The job becomes RUNNING (parameters: p_job_id, p_worker, p_celery_task_id, p_now); returns its row."""
    job_id = bindparam("p_job_id", type_=JobRow.id.type)
    celery_task_id = bindparam("p_celery_task_id", type_=JobRow.celery_task_id.type)
    claimable: ColumnElement[bool] = JobRow.status.in_(_WAITING)
    if redelivered:
        # Only the message whose worker was lost may take its RUNNING job over again.
        claimable = or_(
            claimable, and_(JobRow.status == JobStatus.RUNNING, JobRow.celery_task_id == celery_task_id)
        )
    # A job re-added or recovered under a new message id must not run from a stale duplicate.
    own_message = or_(JobRow.celery_task_id.is_(None), JobRow.celery_task_id == celery_task_id)
    earlier = aliased(JobRow, name="earlier_job")
    run_open = or_(
        JobRow.run_id.is_(None),
        and_(
            exists().where(RunRow.id == JobRow.run_id, RunRow.stop_reason.is_(None)),
            # A duplicate of an old canvas (after recovery) never overtakes an unfinished earlier job.
            ~exists().where(
                earlier.run_id == JobRow.run_id,
                earlier.run_order < JobRow.run_order,
                earlier.status.not_in(_FINISHED),
            ),
        ),
    )
    # No job of a paused queue starts: refused here, every worker honours it, whenever it started.
    queue_open = ~exists().where(QueueRow.name == JobRow.queue, QueueRow.paused)
    return (
        update(JobRow)
        .where(JobRow.id == job_id, claimable, own_message, run_open, queue_open)
        .values(
            status=JobStatus.RUNNING,
            attempts=JobRow.attempts + 1,
            worker=bindparam("p_worker", type_=JobRow.worker.type),
            celery_task_id=celery_task_id,
            started_at=func.coalesce(JobRow.started_at, bindparam("p_now", type_=JobRow.started_at.type)),
        )
        .returning(
            JobRow.run_id,
            JobRow.package_name,
            JobRow.task,
            JobRow.args,
            JobRow.kwargs,
            JobRow.run_order,
            JobRow.retry,
            JobRow.retry_policy,
        )
    )


@functools.cache
def lock_run() -> Select[str, str, bool, bool]:
    """The run (locked), and whether its package has notification rules (so its end may need a mail)."""
    rules = (
        exists()
        .where(NotificationRuleRow.package_id == PackageRow.id, PackageRow.name == RunRow.package_name)
        .label("notifies")
    )
    return (
        select(RunRow.status, RunRow.package_name, RunRow.stop_package_after, rules)
        .where(RunRow.id == bindparam("p_run_id", type_=RunRow.id.type))
        .with_for_update(of=RunRow)
    )


@functools.cache
def job_counts() -> Select[str, int]:
    return (
        select(JobRow.status, func.count())
        .where(JobRow.run_id == bindparam("p_run_id", type_=JobRow.run_id.type))
        .group_by(JobRow.status)
    )


@functools.cache
def finish_run() -> Update:
    return (
        update(RunRow)
        .where(RunRow.id == bindparam("p_run_id", type_=RunRow.id.type))
        .values(
            status=bindparam("p_status", type_=RunRow.status.type),
            finished_at=bindparam("p_now", type_=RunRow.finished_at.type),
        )
    )


@functools.cache
def insert_attempt() -> Insert:
    """The RUNNING log entry of a claimed job's attempt, returning its id (parameters: ``attempt_params``).

    Built once: a statement built per call with ``.values(...)`` costs more than the insert on SQLite."""
    columns = LogEntryRow.__table__.c
    names = ["package_name", "run_id", "job_id", "task", "run_order", "celery_task_id", "worker", "retry"]
    values: dict[str, Any] = {name: bindparam(f"p_{name}", type_=columns[name].type) for name in names}
    started_at = bindparam("p_now", type_=columns.started_at.type)
    return (
        insert(LogEntryRow)
        .values(kind=LogKind.ATTEMPT, status=AttemptStatus.RUNNING, started_at=started_at, **values)
        .returning(LogEntryRow.id)
    )


def attempt_params(params: dict[str, Any] | Any, row: Any) -> dict[str, Any]:
    """``insert_attempt``'s parameters: the claim's (``params``) and the claimed job's row."""
    return {
        "p_package_name": row.package_name,
        "p_run_id": row.run_id,
        "p_job_id": params["p_job_id"],
        "p_task": row.task,
        "p_run_order": row.run_order,
        "p_celery_task_id": params["p_celery_task_id"],
        "p_worker": params["p_worker"],
        "p_retry": row.retry,
        "p_now": params["p_now"],
    }


@functools.cache
def insert_finished_log() -> Insert:
    """The RUN_FINISHED log entry of a run (``writers.PostgresWriter.close_run``)."""
    columns = LogEntryRow.__table__.c
    # The columns it leaves out take the database's defaults (on the driver, SQLAlchemy's do not apply).
    return insert(LogEntryRow).values(
        kind=LogKind.RUN_FINISHED,
        status=bindparam("p_status", type_=columns.status.type),
        package_name=bindparam("p_package", type_=columns.package_name.type),
        run_id=bindparam("p_run_id", type_=columns.run_id.type),
        message=bindparam("p_message", type_=columns.message.type),
        started_at=bindparam("p_now", type_=columns.started_at.type),
        finished_at=bindparam("p_now", type_=columns.finished_at.type),
    )


@functools.cache
def lock_run_and_count_jobs() -> Select[Any]:
    """``lock_run`` plus its jobs' counts by status (a JSON object), in one round trip (PostgreSQL)."""
    by_status = (
        select(JobRow.status, func.count().label("n"))
        .where(JobRow.run_id == bindparam("p_run_id", type_=JobRow.run_id.type))
        .group_by(JobRow.status)
        .subquery("by_status")
    )
    counts = select(func.json_object_agg(by_status.c.status, by_status.c.n)).scalar_subquery()
    return lock_run().add_columns(counts.label("job_counts"))


@functools.cache
def finish_log_and_next_queued() -> Select[Any]:
    """``finish_run`` and ``insert_finished_log`` run as CTEs of ``next_queued_run``: one statement.

    PostgreSQL runs a data-modifying CTE to completion whether or not the query reads it; the query
    reads the package's queued runs, which neither of them changes.
    """
    finished = finish_run().cte("finished_run")
    logged = insert_finished_log().cte("finished_log")
    return next_queued_run().add_cte(finished, logged)


@functools.cache
def running_run() -> Select[int]:
    """A RUNNING run of the package (parameter: p_package), if any."""
    return (
        select(RunRow.id)
        .where(
            RunRow.package_name == bindparam("p_package", type_=RunRow.package_name.type),
            RunRow.status == RunStatus.RUNNING,
        )
        .limit(1)
    )


@functools.cache
def next_queued_run_locked() -> Select[int]:
    """``next_queued_run``, locked: the one to start."""
    return next_queued_run().with_for_update()


@functools.cache
def next_queued_run() -> Select[int]:
    return (
        select(RunRow.id)
        .where(
            RunRow.package_name == bindparam("p_package", type_=RunRow.package_name.type),
            RunRow.status == RunStatus.QUEUED,
        )
        .order_by(RunRow.id)
        .limit(1)
    )


@functools.cache
def claim_and_log() -> Select[Any]:
    return one_statement.claim_and_log(claim(redelivered=False))


def end_params(
    job: ClaimedJob, now: datetime, error: str | None, traceback: str | None, planned_delay_s: float | None
) -> dict[str, Any]:
    return {
        "p_job_id": job.job_id,
        "p_log_id": job.log_id,
        "p_now": now,
        "p_error": error,
        "p_traceback": traceback,
        "p_planned_delay_s": planned_delay_s,
        "p_retry": job.retry + 1,
        "p_current_delay_s": planned_delay_s or 0.0,
    }


@functools.cache
def end_attempt(outcome: AttemptStatus) -> tuple[Update, Update]:
    """(job update, log entry update) that end an attempt with ``outcome``.

    The job is ended only if its attempt was: the log entry's update runs first (``one_statement``
    runs it as a CTE of the job's), so an attempt closed meanwhile (the job was delivered again and
    taken over, or recovered) leaves the job to whoever closed it.
    Parameters: p_job_id, p_log_id, p_now, p_error, p_traceback, p_planned_delay_s, and for a FAILED
    attempt (a retry is planned) p_retry and p_current_delay_s.
    """
    job_status = {
        AttemptStatus.DONE: JobStatus.DONE,
        AttemptStatus.FAILED: JobStatus.RETRYING,
        AttemptStatus.ERROR: JobStatus.ERROR,
    }[outcome]
    now = bindparam("p_now", type_=JobRow.finished_at.type)
    error = bindparam("p_error", type_=JobRow.error.type)
    values: dict[str, Any] = {"status": job_status, "error": error}
    if outcome is AttemptStatus.FAILED:
        values.update(
            retry=bindparam("p_retry", type_=JobRow.retry.type),
            current_delay_s=bindparam("p_current_delay_s", type_=JobRow.current_delay_s.type),
        )
    else:
        values["finished_at"] = now
    # An aborted or recovered job keeps the status it was given meanwhile.
    running = JobRow.status == JobStatus.RUNNING
    end_job = (
        update(JobRow)
        .where(JobRow.id == bindparam("p_job_id", type_=JobRow.id.type), running)
        .values(**values)
    )
    end_log = (
        update(LogEntryRow)
        .where(
            LogEntryRow.id == bindparam("p_log_id", type_=LogEntryRow.id.type),
            LogEntryRow.status == AttemptStatus.RUNNING,
        )
        .values(
            status=outcome,
            finished_at=now,
            error=error,
            traceback=bindparam("p_traceback", type_=LogEntryRow.traceback.type),
            planned_delay_s=bindparam("p_planned_delay_s", type_=LogEntryRow.planned_delay_s.type),
        )
    )
    return end_job, end_log


@functools.cache
def end_attempt_in_one_statement(outcome: AttemptStatus) -> Select[Any]:
    return one_statement.end_attempt(*end_attempt(outcome))


@functools.cache
def job_status() -> Select[str]:
    """The job's status (parameter: p_job_id), to say why an end found nothing to end."""
    return select(JobRow.status).where(JobRow.id == bindparam("p_job_id", type_=JobRow.id.type))


def claimed_job(job_id: int, log_id: int, row: Any) -> ClaimedJob:
    return ClaimedJob(
        job_id=job_id,
        run_id=row.run_id,
        log_id=log_id,
        package=row.package_name,
        task=row.task,
        args=list(row.args or []),
        kwargs=dict(row.kwargs or {}),
        run_order=row.run_order,
        retry=row.retry,
        retry_policy=dict(row.retry_policy or {}),
    )


def close_running_attempt(job_id: int, status: str, now: datetime, error: str | None) -> Update:
    """The statement that ends a job's running attempt (its log entry) with ``status`` and ``error``."""
    return (
        update(LogEntryRow)
        .where(
            LogEntryRow.job_id == job_id,
            LogEntryRow.kind == LogKind.ATTEMPT,
            LogEntryRow.status == AttemptStatus.RUNNING,
        )
        .values(status=status, finished_at=now, error=error)
    )


@functools.cache
def insert_row(model: type[Base], names: tuple[str, ...]) -> Insert:
    """One row of ``model``'s table, each of the columns ``names`` a parameter ``p_<column>``; returns its
    id. A column left out takes its default: SQLAlchemy's, written into the statement, or the database's."""
    columns = model.__table__.c
    defaults = {
        column.name: column.default.arg
        for column in columns
        if column.name not in names and column.default is not None and column.default.is_scalar
    }
    params = {name: bindparam(f"p_{name}", type_=columns[name].type) for name in names}
    return insert(model).values({**defaults, **params}).returning(columns["id"])
