"""The store: packages, runs, jobs and log entries in one SQL database.

Every public method is one transaction. The store knows nothing of Celery: the runtime hands it plain
values and gets plain values back.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ColumnElement

from jqm_celery.definitions import Package
from jqm_celery.errors import ConfigError, NotFoundError, StateError, ValidationError, did_you_mean
from jqm_celery.events import Event
from jqm_celery.plans import ClaimedJob, JobPlan, RunClosed, RunPlan, error_policy
from jqm_celery.records import LogEntry, PackageState, Run, RunSummary
from jqm_celery.recurrence import Recurrence
from jqm_celery.statuses import (
    FINISHED_JOB,
    WAITING_JOB,
    AttemptStatus,
    JobStatus,
    LogKind,
    OnError,
    PackageStatus,
    RunStatus,
    ensure_editable,
)
from jqm_celery.store import convert, driver, migrate, one_statement
from jqm_celery.store.bulk import insert_rows
from jqm_celery.store.engine import make_engine, redact
from jqm_celery.store.models import EntryRow, JobRow, LogEntryRow, PackageRow, RecurrenceRow, RunRow
from jqm_celery.store.notification_models import NotificationRuleRow

logger = logging.getLogger("jqm_celery")

_EVENTS = "jqm_events"
_WAITING = [s.value for s in WAITING_JOB]
_FINISHED = [s.value for s in FINISHED_JOB]


class Store:
    def __init__(self, url: str, *, auto_migrate: bool | None = None) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._schema_ready = False
        self._auto_migrate = auto_migrate
        #: Called with each Event after its transaction has committed (the notifier listens here).
        self.listeners: list[Callable[[Event], None]] = []

    # -- connection -------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        # A forked worker child must not reuse its parent's connections.
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine = make_engine(self.url)
            self._pid = os.getpid()
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction (BEGIN IMMEDIATE on SQLite); the schema is checked on first use."""
        if not self._schema_ready:
            self.ensure_schema()
        events: list[Event] = []
        with Session(self.engine, expire_on_commit=False, info={_EVENTS: events}) as session, session.begin():
            yield session
        if events and self.listeners:
            self._publish(events)

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement commits on its own (for single-statement writes)."""
        if not self._schema_ready:
            self.ensure_schema()
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def _execute_on_driver(self, statement: Select[Any] | UpdateBase, params: dict[str, Any]) -> Any:
        """One autocommitted statement of an attempt, on this thread's kept connection (see driver)."""
        if not self._schema_ready:
            self.ensure_schema()
        return driver.execute_one(self.engine, statement, params)

    @functools.cached_property
    def writes_attempts_in_one_statement(self) -> bool:
        """True on PostgreSQL: an attempt's start and end are one statement each (see one_statement)."""
        return self.engine.dialect.name == "postgresql"

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:
                    # What was recorded stays recorded: a listener must never fail the caller.
                    logger.exception("jqm: a listener of %s events failed", event.kind)

    def ensure_schema(self) -> None:
        """Migrate an embedded SQLite store; check that any other store is at the current revision."""
        auto = self.is_sqlite if self._auto_migrate is None else self._auto_migrate
        if auto:
            migrate.upgrade(self.engine)
        else:
            current, head = migrate.current_revision(self.engine), migrate.head_revision(self.engine)
            if current != head:
                raise ConfigError(
                    f"the jqm store at {redact(self.url)} is at revision {current or 'none'}, this "
                    f"version of jqm-celery needs {head}; run `jqm db upgrade` (or jqm.upgrade_db())"
                )
        self._schema_ready = True

    def upgrade(self) -> tuple[str | None, str | None]:
        """Migrate to the newest revision; returns (before, after)."""
        before = migrate.current_revision(self.engine)
        migrate.upgrade(self.engine)
        self._schema_ready = True
        return before, migrate.current_revision(self.engine)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- packages ---------------------------------------------------------------------------

    def save_package(self, package: Package, now: datetime, *, create_only: bool = False) -> bool:
        """Create the package (DRAFT) or replace the definition of an editable one; True if created."""
        with self.transaction() as s:
            row = self._package_row(s, package.name, lock=True, missing_ok=True)
            if row is None:
                row = PackageRow(
                    name=package.name,
                    status=PackageStatus.DRAFT,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                _write_definition(s, row, package, replace=False)
                return True
            if create_only:
                raise ValidationError(
                    f"package '{package.name}' already exists; pick another name, or use jqm.save(...) to "
                    "change it"
                )
            if self._definition(s, row) == package:
                return False
            ensure_editable(package.name, PackageStatus(row.status))
            _write_definition(s, row, package, replace=True)
            row.version += 1
            row.updated_at = now
            return False

    def package(self, name: str) -> PackageState:
        with self.transaction() as s:
            row = self._package_row(s, name)
            return self._state(s, row)

    def packages(self) -> list[PackageState]:
        with self.transaction() as s:
            rows = s.scalars(select(PackageRow).order_by(PackageRow.name)).all()
            return [self._state(s, row) for row in rows]

    def set_status(
        self,
        name: str,
        to: PackageStatus,
        now: datetime,
        check: Callable[[str, PackageStatus], None],
    ) -> PackageState:
        """Move the package to ``to`` after ``check(name, current)`` has accepted the move."""
        with self.transaction() as s:
            row = self._package_row(s, name, lock=True)
            check(name, PackageStatus(row.status))
            row.status = to
            row.updated_at = now
            self._schedule(s, row, now if to is PackageStatus.ACTIVE else None)
            if to is PackageStatus.ON_HOLD:
                self._stop_in_flight_runs(s, name, now, "package put on hold", LogKind.RUN_STOPPED_BY_HOLD)
            return self._state(s, row)

    def delete_package(self, name: str) -> None:
        with self.transaction() as s:
            row = self._package_row(s, name, lock=True)
            ensure_editable(name, PackageStatus(row.status), action="delete")
            s.delete(row)

    def package_names(self) -> list[str]:
        with self.transaction() as s:
            return list(s.scalars(select(PackageRow.name).order_by(PackageRow.name)))

    # -- runs -------------------------------------------------------------------------------

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
        with self.transaction() as s:
            row = self._package_row(s, name, lock=True)
            package = self._definition(s, row)
            if check is not None:
                check(package)
            busy = s.scalar(
                select(func.count())
                .select_from(RunRow)
                .where(RunRow.package_name == name, RunRow.status.in_([RunStatus.RUNNING, RunStatus.QUEUED]))
            )
            if busy and not queue_if_busy:
                raise StateError(
                    f"package '{name}' already has a run in flight; wait for it to finish, or ask to queue "
                    "this one (jqm.run_now(name, queue=True) or `jqm packages run NAME --queue`)"
                )
            start_now = not busy
            plan, run = add_run(s, package, trigger, now, start_now=start_now)
            if start_now:
                _log(
                    s,
                    LogKind.RUN_STARTED,
                    RunStatus.RUNNING,
                    now,
                    package=name,
                    run_id=run.id,
                    message=f"run started ({trigger})",
                    notify=bool(package.notifications),
                )
            return plan, run, start_now

    def start_queued_run(self, run_id: int, now: datetime) -> RunPlan | None:
        """Mark a queued run as started; None if it is no longer queued."""
        with self.transaction() as s:
            run = s.get(RunRow, run_id, with_for_update=True)
            if run is None or run.status != RunStatus.QUEUED:
                return None
            run.status = RunStatus.RUNNING
            run.started_at = now
            jobs = s.scalars(select(JobRow).where(JobRow.run_id == run_id).order_by(JobRow.position)).all()
            _log(
                s,
                LogKind.RUN_STARTED,
                RunStatus.RUNNING,
                now,
                package=run.package_name,
                run_id=run.id,
                message=f"run started ({run.trigger}, after the previous run)",
            )
            return _plan(run, jobs)

    def fail_dispatch(self, run_id: int, now: datetime, error: str) -> None:
        """Record that a run's canvas could not be sent; its jobs will never start."""
        with self.transaction() as s:
            run = s.get(RunRow, run_id)
            if run is None:
                return
            s.execute(
                update(JobRow)
                .where(JobRow.run_id == run_id, JobRow.status.in_(_WAITING))
                .values(status=JobStatus.SKIPPED, finished_at=now, error=error)
            )
            run.status = RunStatus.FAILED
            run.finished_at = now
            run.stop_reason = error
            _log(
                s,
                LogKind.RUN_FINISHED,
                RunStatus.FAILED,
                now,
                package=run.package_name,
                run_id=run_id,
                error=error,
                message="run could not be sent to the broker",
            )

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

    def runs(self, package: str | None = None, status: RunStatus | None = None, limit: int = 50) -> list[Run]:
        with self.transaction() as s:
            query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
            if package is not None:
                query = query.where(RunRow.package_name == package)
            if status is not None:
                query = query.where(RunRow.status == status)
            return [_run(r, ()) for r in s.scalars(query)]

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
        jobs = tuple(JobPlan(*row[1:]) for row in rows if row.id is not None)
        return RunPlan(run_id=run_id, package=rows[0].package_name, jobs=jobs)

    def close_run(self, run_id: int, now: datetime) -> RunClosed | None:
        """Finish the run once all its jobs have; apply FINISH_THEN_STOP. None if nothing to do."""
        if self.writes_attempts_in_one_statement:
            handled, closed = self._close_run_on_driver(run_id, now)
            if handled:
                return closed
        with self.transaction() as s:
            # Core on the session's connection: this runs once per run on a worker, and the ORM's identity
            # map and flush bookkeeping cost more than the statements.
            conn = s.connection()
            run = conn.execute(_lock_run(), {"p_run_id": run_id}).one_or_none()
            if run is None or RunStatus(run.status).finished:
                return None
            counts: dict[str, int] = dict(conn.execute(_job_counts(), {"p_run_id": run_id}).all())
            if any(status not in _FINISHED for status in counts):
                return None
            status = _run_outcome(counts)
            conn.execute(_finish_run(), {"p_run_id": run_id, "p_status": status.value, "p_now": now})
            _log(
                s,
                LogKind.RUN_FINISHED,
                status,
                now,
                package=run.package_name,
                run_id=run_id,
                message=_finished_message(status, counts),
                notify=run.notifies,
            )
            stopped = False
            if run.stop_package_after:
                stopped = self._stop_package(
                    s, run.package_name, now, run_id, "a job failed; the run finished (FINISH_THEN_STOP)"
                )
            next_id = conn.execute(_next_queued_run(), {"p_package": run.package_name}).scalar()
            return RunClosed(run_id, run.package_name, status, stopped, next_id)

    def _close_run_on_driver(self, run_id: int, now: datetime) -> tuple[bool, RunClosed | None]:
        """PostgreSQL: ``close_run``'s statements as prepared statements in one transaction on this thread's
        kept connection (see driver): a one-job run is closed by its job, on the worker, once per run.

        Returns (handled, what ``close_run`` returns). Not handled when the run's package must be stopped
        (FINISH_THEN_STOP): ``close_run`` then does it all in its own transaction.
        """
        if not self._schema_ready:
            self.ensure_schema()
        with driver.transaction(self.engine):
            run = driver.execute_one(self.engine, _lock_run_and_count_jobs(), {"p_run_id": run_id})
            if run is None or RunStatus(run.status).finished:
                return True, None
            if run.stop_package_after:
                return False, None
            counts: dict[str, int] = run.job_counts or {}
            if any(status not in _FINISHED for status in counts):
                # The counts were read in the snapshot taken before the lock was granted: a transaction
                # that held it may have finished jobs since. Finished is final, so only this needs a look.
                counts = dict(driver.execute_all(self.engine, _job_counts(), {"p_run_id": run_id}))
                if any(status not in _FINISHED for status in counts):
                    return True, None
            status = _run_outcome(counts)
            message = _finished_message(status, counts)
            following = driver.execute_one(
                self.engine,
                _finish_log_and_next_queued(),
                {
                    "p_status": status.value,
                    "p_package": run.package_name,
                    "p_run_id": run_id,
                    "p_message": message,
                    "p_now": now,
                },
            )
        if self.listeners:
            self._publish(
                [
                    Event(
                        LogKind.RUN_FINISHED,
                        status.value,
                        now,
                        run.package_name,
                        run_id,
                        message=message,
                        notify=run.notifies,
                    )
                ]
            )
        next_id = None if following is None else following.id
        return True, RunClosed(run_id, run.package_name, status, False, next_id)

    # -- jobs: the hot path (one transaction to start an attempt, one to end it) ------------

    def claim_job(
        self, job_id: int, worker: str, celery_task_id: str, now: datetime, *, redelivered: bool
    ) -> ClaimedJob | None:
        """Start an attempt: the job becomes RUNNING and its attempt is logged. None if it must not run."""
        params = {"p_job_id": job_id, "p_worker": worker, "p_celery_task_id": celery_task_id, "p_now": now}
        if not redelivered and self.writes_attempts_in_one_statement:
            claimed = self._execute_on_driver(_claim_and_log(), params)
            return None if claimed is None else _claimed_job(job_id, claimed.log_id, claimed)
        with self.transaction() as s:
            # Core execution on the session's connection: the ORM's bulk-DML bookkeeping (synchronising a
            # session that holds no objects) costs more than the statements themselves on this hot path.
            conn = s.connection()
            row = conn.execute(_claim(redelivered), params).one_or_none()
            if row is None:
                return None
            if redelivered:
                conn.execute(
                    close_running_attempt(
                        job_id,
                        AttemptStatus.INTERRUPTED,
                        now,
                        "the worker running this attempt was lost; the job was delivered again",
                    )
                )
            log_id = conn.execute(
                insert(LogEntryRow)
                .values(
                    kind=LogKind.ATTEMPT,
                    status=AttemptStatus.RUNNING,
                    package_name=row.package_name,
                    run_id=row.run_id,
                    job_id=job_id,
                    task=row.task,
                    run_order=row.run_order,
                    celery_task_id=celery_task_id,
                    worker=worker,
                    retry=row.retry,
                    started_at=now,
                )
                .returning(LogEntryRow.id)
            ).scalar_one()
            return _claimed_job(job_id, log_id, row)

    def skip_if_stopped(self, job_id: int, now: datetime) -> bool:
        """Skip a waiting job whose run is being stopped (held, or stopped by its On Error policy)."""
        with self.transaction() as s:
            row = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.status.in_(_WAITING),
                    exists().where(RunRow.id == JobRow.run_id, RunRow.stop_reason.is_not(None)),
                )
                .values(status=JobStatus.SKIPPED, finished_at=now)
                .returning(JobRow.run_id, JobRow.package_name, JobRow.task, JobRow.run_order)
            ).one_or_none()
            if row is None:
                return False
            _log(
                s,
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                package=row.package_name,
                run_id=row.run_id,
                job_id=job_id,
                task=row.task,
                run_order=row.run_order,
                message="skipped: the run was stopped",
            )
            return True

    def end_attempt(
        self,
        job: ClaimedJob,
        now: datetime,
        outcome: AttemptStatus,
        *,
        error: str | None = None,
        traceback: str | None = None,
        planned_delay_s: float | None = None,
    ) -> None:
        """Close the attempt's log entry and move the job on (DONE, RETRYING or ERROR).

        A handed-over job's attempt also gets its worker and its real start (``job.worker``).
        """
        params = _end_params(job, now, error, traceback, planned_delay_s)
        records_start = job.worker is not None
        events: list[Event] = []
        if outcome is not AttemptStatus.DONE:
            event = Event(LogKind.ATTEMPT, outcome, now, job.package, job.run_id, job.job_id, job.task)
            events.append(dataclasses.replace(event, log_id=job.log_id, error=error))
        if self.writes_attempts_in_one_statement:
            self._execute_on_driver(_end_attempt_in_one_statement(outcome, records_start), params)
            if events and self.listeners:
                self._publish(events)
            return
        end_job, end_log = _end_attempt(outcome, records_start)
        with self.transaction() as s:
            conn = s.connection()  # Core execution, as in claim_job
            conn.execute(end_job, params)
            conn.execute(end_log, params)
            s.info[_EVENTS].extend(events)

    # -- jobs handed over: the end of one job starts the next (see jqm_celery.handover) -----------

    def hand_over(
        self, ended: ClaimedJob, now: datetime, next_job_id: int, next_celery_task_id: str
    ) -> ClaimedJob | None:
        """End ``ended`` as DONE and, in the same statement, start an attempt of the next job (PostgreSQL).

        The next job is claimed on the same conditions as in ``claim_job`` (``ended`` counts as finished),
        for the message ``next_celery_task_id``, with no worker yet: the worker that runs it records
        itself. Returns the claimed job, or None if it was not claimed (``ended`` is ended all the same).
        """
        if not self.writes_attempts_in_one_statement:
            raise RuntimeError("hand_over needs a store that writes an attempt in one statement (PostgreSQL)")
        params = _end_params(ended, now, None, None, None)
        params.update(p_next_job_id=next_job_id, p_celery_task_id=next_celery_task_id, p_worker=None)
        row = self._execute_on_driver(_hand_over(ended.worker is not None), params)
        return None if row is None else _claimed_job(next_job_id, row.log_id, row)

    def start_handed_over(
        self, job: ClaimedJob, worker: str, celery_task_id: str, now: datetime
    ) -> JobStatus | None:
        """Check and record the start of a handed-over job whose message reached its worker late.

        RUNNING: the job is still this message's and its run goes on; the attempt now names ``worker`` and
        starts at ``now``. SKIPPED: the run was stopped meanwhile; the attempt, which never started, leaves
        the log and the job is skipped. None: the job is no longer this message's (recovered meanwhile).
        """
        with self.transaction() as s:
            row = s.execute(
                select(JobRow, RunRow.stop_reason)
                .join(RunRow, RunRow.id == JobRow.run_id)
                .where(
                    JobRow.id == job.job_id,
                    JobRow.status == JobStatus.RUNNING,
                    JobRow.celery_task_id == celery_task_id,
                    JobRow.worker.is_(None),
                )
                .with_for_update(of=JobRow)
            ).one_or_none()
            if row is None:
                return None
            found, stop_reason = row
            if stop_reason is None:
                found.worker = worker
                s.execute(
                    update(LogEntryRow)
                    .where(LogEntryRow.id == job.log_id, LogEntryRow.status == AttemptStatus.RUNNING)
                    .values(worker=worker, started_at=now)
                )
                return JobStatus.RUNNING
            found.status = JobStatus.SKIPPED
            found.finished_at = now
            found.attempts -= 1
            s.execute(
                delete(LogEntryRow).where(
                    LogEntryRow.id == job.log_id, LogEntryRow.status == AttemptStatus.RUNNING
                )
            )
            _log(
                s,
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                package=found.package_name,
                run_id=found.run_id,
                job_id=found.id,
                task=found.task,
                run_order=found.run_order,
                message=f"skipped: {stop_reason}",
            )
            return JobStatus.SKIPPED

    def record_start(
        self, job_id: int, log_id: int, celery_task_id: str, worker: str, started_at: datetime
    ) -> bool:
        """Name the worker of a running handed-over job; False if it has ended or is no longer this one."""
        with self.transaction() as s:
            named = (
                s.connection()
                .execute(
                    update(JobRow)
                    .where(
                        JobRow.id == job_id,
                        JobRow.status == JobStatus.RUNNING,
                        JobRow.celery_task_id == celery_task_id,
                        JobRow.worker.is_(None),
                    )
                    .values(worker=worker)
                )
                .rowcount
            )
            if not named:
                return False
            s.execute(
                update(LogEntryRow)
                .where(LogEntryRow.id == log_id, LogEntryRow.status == AttemptStatus.RUNNING)
                .values(worker=worker, started_at=started_at)
            )
            return True

    def fail_job(self, job_id: int, now: datetime, error: str) -> bool:
        """Settle a job whose wrapper died as ERROR (its running attempt too); False if already settled."""
        with self.transaction() as s:
            settled = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.not_in(_FINISHED))
                .values(status=JobStatus.ERROR, finished_at=now, error=error)
                .returning(JobRow.run_id, JobRow.package_name, JobRow.task)
            ).one_or_none()
            if settled is None:
                return False
            event = Event(LogKind.ATTEMPT, AttemptStatus.ERROR, now, settled.package_name, settled.run_id)
            add_event(s, dataclasses.replace(event, job_id=job_id, task=settled.task, error=error))
            s.execute(close_running_attempt(job_id, AttemptStatus.ERROR, now, error))
            return True

    def apply_error_policy(self, run_id: int, now: datetime, reason: str) -> OnError:
        """A job of the run failed for good: skip the rest now (STOP) or flag the package to stop."""
        with self.transaction() as s:
            run = s.get(RunRow, run_id, with_for_update=True)
            if run is None:
                raise NotFoundError(f"run {run_id} does not exist")
            policy = OnError(run.on_error)
            skip_now, stop_package = error_policy(policy)
            if skip_now and run.stop_reason is None:
                run.stop_reason = reason
                self._skip_waiting_jobs(s, run, now, "skipped: an earlier job failed (On Error: STOP)")
                self._stop_package(s, run.package_name, now, run_id, f"{reason} (On Error: STOP)")
            elif stop_package:
                run.stop_package_after = True
            return policy

    # -- log entries ------------------------------------------------------------------------

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
        query = select(LogEntryRow).order_by(LogEntryRow.id.desc()).limit(limit)
        filters = {
            LogEntryRow.package_name: package,
            LogEntryRow.run_id: run_id,
            LogEntryRow.job_id: job_id,
            LogEntryRow.status: status,
            LogEntryRow.kind: kind,
        }
        query = query.where(*(column == value for column, value in filters.items() if value is not None))
        if before_id is not None:
            query = query.where(LogEntryRow.id < before_id)
        if since is not None:
            query = query.where(LogEntryRow.started_at >= since)
        if until is not None:
            query = query.where(LogEntryRow.started_at < until)
        with self.transaction() as s:
            return [convert.log_entry(row) for row in s.scalars(query)]

    # -- helpers ----------------------------------------------------------------------------

    def _package_row(self, s: Session, name: str, *, lock: bool = False, missing_ok: bool = False) -> Any:
        query = select(PackageRow).where(PackageRow.name == name)
        if lock:
            query = query.with_for_update()
        row = s.scalar(query)
        if row is None and not missing_ok:
            names = list(s.scalars(select(PackageRow.name)))

            raise NotFoundError(f"package '{name}' does not exist{did_you_mean(name, names)}")
        return row

    def _definition(self, s: Session, row: PackageRow) -> Package:
        entries = s.scalars(select(EntryRow).where(EntryRow.package_id == row.id)).all()
        recurrences = s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == row.id)).all()
        rules = s.scalars(select(NotificationRuleRow).where(NotificationRuleRow.package_id == row.id)).all()
        return convert.package_definition(row, entries, recurrences, rules)

    def _state(self, s: Session, row: PackageRow) -> PackageState:
        last = s.scalar(
            select(RunRow).where(RunRow.package_name == row.name).order_by(RunRow.id.desc()).limit(1)
        )
        next_run_at = s.scalar(
            select(func.min(RecurrenceRow.next_fire_at)).where(RecurrenceRow.package_id == row.id)
        )
        return PackageState(
            definition=self._definition(s, row),
            status=PackageStatus(row.status),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            next_run_at=next_run_at if row.status == PackageStatus.ACTIVE else None,
            last_run=None
            if last is None
            else RunSummary(last.id, RunStatus(last.status), last.created_at, last.finished_at),
        )

    def _schedule(self, s: Session, row: PackageRow, now: datetime | None) -> None:
        """Set each recurrence's next fire time from ``now``, or clear them all (None: not active)."""
        for recurrence in s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == row.id)):
            recurrence.next_fire_at = (
                None if now is None else Recurrence.from_dict(recurrence.spec).next_after(now)
            )

    def _stop_in_flight_runs(self, s: Session, name: str, now: datetime, reason: str, kind: LogKind) -> None:
        runs = s.scalars(
            select(RunRow).where(
                RunRow.package_name == name,
                RunRow.status.in_([RunStatus.RUNNING, RunStatus.QUEUED]),
                RunRow.stop_reason.is_(None),
            )
        ).all()
        for run in runs:
            self.stop_run(s, run, now, reason, kind)

    def stop_run(self, s: Session, run: RunRow, now: datetime, reason: str, kind: LogKind) -> int:
        """Stop one run in ``s``: its waiting jobs are skipped, a queued run ends STOPPED. Jobs skipped."""
        run.stop_reason = reason
        skipped = self._skip_waiting_jobs(s, run, now, f"skipped: {reason}")
        _log(
            s,
            kind,
            RunStatus.STOPPED,
            now,
            package=run.package_name,
            run_id=run.id,
            message=f"{reason}: {skipped} job(s) will not start",
        )
        if run.status == RunStatus.QUEUED:
            run.status = RunStatus.STOPPED
            run.finished_at = now
        return skipped

    def _skip_waiting_jobs(self, s: Session, run: RunRow, now: datetime, message: str) -> int:
        skipped = s.execute(
            update(JobRow)
            .where(JobRow.run_id == run.id, JobRow.status.in_(_WAITING))
            .values(status=JobStatus.SKIPPED, finished_at=now)
            .returning(JobRow.id, JobRow.task, JobRow.run_order)
        ).all()
        for job_id, task, run_order in skipped:
            _log(
                s,
                LogKind.JOB_SKIPPED,
                JobStatus.SKIPPED,
                now,
                package=run.package_name,
                run_id=run.id,
                job_id=job_id,
                task=task,
                run_order=run_order,
                message=message,
            )
        return len(skipped)

    def _stop_package(self, s: Session, name: str, now: datetime, run_id: int, reason: str) -> bool:
        """ACTIVE → ERROR; False if the package was not ACTIVE (e.g. a DRAFT being tried)."""
        changed = s.execute(
            update(PackageRow)
            .where(and_(PackageRow.name == name, PackageRow.status == PackageStatus.ACTIVE))
            .values(status=PackageStatus.ERROR, updated_at=now)
            .returning(PackageRow.id)
        ).first()
        if changed is not None:
            self._schedule(s, s.scalars(select(PackageRow).where(PackageRow.name == name)).one(), None)
            _log(
                s,
                LogKind.PACKAGE_STOPPED,
                PackageStatus.ERROR,
                now,
                package=name,
                run_id=run_id,
                message=f"package stopped: {reason}; fix the cause and activate it again",
            )
        return changed is not None


def new_run_values(package: Package, trigger: str, now: datetime, *, start_now: bool) -> dict[str, Any]:
    """A run of ``package``'s columns: RUNNING from ``now``, or QUEUED behind a run in flight."""
    return {
        "package_name": package.name,
        "status": RunStatus.RUNNING if start_now else RunStatus.QUEUED,
        "trigger": trigger,
        "on_error": package.on_error,
        "created_at": now,
        "started_at": now if start_now else None,
    }


def add_run(
    s: Session, package: Package, trigger: str, now: datetime, *, start_now: bool
) -> tuple[RunPlan, Run]:
    """Insert a run of ``package`` and one QUEUED job per entry (``bulk``, no ORM objects).

    Returns the run's plan and its record, built from what was inserted rather than read back.
    """
    conn = s.connection()
    values = new_run_values(package, trigger, now, start_now=start_now)
    [run_id] = insert_rows(conn, RunRow, [values])
    jobs = new_job_values(run_id, package, now)
    job_ids = insert_rows(conn, JobRow, jobs)
    run = Run(
        id=run_id,
        package=package.name,
        status=RunStatus(values["status"]),
        trigger=trigger,
        stop_reason=None,
        created_at=now,
        started_at=values["started_at"],
        finished_at=None,
        jobs=tuple(convert.new_job(job_id, job) for job_id, job in zip(job_ids, jobs, strict=True)),
    )
    return plan_of(run_id, package.name, job_ids, jobs), run


def new_run_row(package: Package, trigger: str, now: datetime, *, start_now: bool) -> RunRow:
    """A run of ``package``, RUNNING from ``now`` or QUEUED behind a run in flight (not yet added)."""
    return RunRow(**new_run_values(package, trigger, now, start_now=start_now))


def new_job_values(run_id: int, package: Package, now: datetime) -> list[dict[str, Any]]:
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


def new_job_rows(run: RunRow, package: Package, now: datetime) -> list[JobRow]:
    """One QUEUED job per entry of ``package`` for the flushed ``run`` (not yet added)."""
    return [JobRow(**values) for values in new_job_values(run.id, package, now)]


def _write_definition(s: Session, row: PackageRow, package: Package, *, replace: bool) -> None:
    row.on_error = package.on_error
    row.catch_up = package.catch_up
    row.allow_overlap = package.allow_overlap
    row.description = package.description
    s.flush()
    if replace:
        for old in s.scalars(select(EntryRow).where(EntryRow.package_id == row.id)):
            s.delete(old)
        for old_rec in s.scalars(select(RecurrenceRow).where(RecurrenceRow.package_id == row.id)):
            s.delete(old_rec)
        rules = select(NotificationRuleRow).where(NotificationRuleRow.package_id == row.id)
        for old_rule in s.scalars(rules):
            s.delete(old_rule)
        s.flush()
    for position, entry in enumerate(package.entries, start=1):
        s.add(EntryRow(package_id=row.id, position=position, definition=entry.to_dict()))
    for position, recurrence in enumerate(package.recurrences, start=1):
        s.add(RecurrenceRow(package_id=row.id, position=position, spec=recurrence.to_dict()))
    for position, rule in enumerate(package.notifications, start=1):
        s.add(NotificationRuleRow(package_id=row.id, position=position, definition=rule.to_dict()))


def add_event(s: Session, event: Event) -> None:
    """Tell the store's listeners of ``event`` once the transaction of ``s`` has committed."""
    s.info[_EVENTS].append(event)


def _log(
    s: Session,
    kind: LogKind,
    status: str,
    now: datetime,
    *,
    package: str | None = None,
    run_id: int | None = None,
    job_id: int | None = None,
    task: str | None = None,
    run_order: int | None = None,
    error: str | None = None,
    message: str | None = None,
    notify: bool = True,
) -> None:
    add_event(
        s,
        Event(
            kind, str(status), now, package, run_id, job_id, task, error=error, message=message, notify=notify
        ),
    )
    # Core on the session's connection (after writing what the session holds, so entries keep their
    # order): an ORM-enabled INSERT costs several times the statement.
    s.flush()
    s.connection().execute(
        _insert_log(),
        {
            "kind": kind,
            "status": status,
            "package_name": package,
            "run_id": run_id,
            "job_id": job_id,
            "task": task,
            "run_order": run_order,
            "error": error,
            "message": message,
            "started_at": now,
            "finished_at": now,
        },
    )


@functools.cache
def _insert_log() -> Insert:
    return insert(LogEntryRow)


# The hot path's statements are built once, with bound parameters (named p_*: INSERT and UPDATE reserve
# the column names): building and hashing a statement of this size on every call costs more CPU than
# executing it.


@functools.cache
def _claim(redelivered: bool, handed_over: bool = False) -> Update:
    """The job becomes RUNNING (parameters: p_job_id, p_worker, p_celery_task_id, p_now); returns its row.

    ``handed_over``: the claim of the next job in ``_hand_over``, whose id is p_next_job_id; the job
    p_job_id, ended in the same statement, does not count as an unfinished earlier job.
    """
    job_id = bindparam("p_next_job_id" if handed_over else "p_job_id", type_=JobRow.id.type)
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
                *([earlier.id != bindparam("p_job_id", type_=JobRow.id.type)] if handed_over else []),
            ),
        ),
    )
    return (
        update(JobRow)
        .where(JobRow.id == job_id, claimable, own_message, run_open)
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
def _lock_run() -> Select[str, str, bool, bool]:
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
def _job_counts() -> Select[str, int]:
    return (
        select(JobRow.status, func.count())
        .where(JobRow.run_id == bindparam("p_run_id", type_=JobRow.run_id.type))
        .group_by(JobRow.status)
    )


@functools.cache
def _finish_run() -> Update:
    return (
        update(RunRow)
        .where(RunRow.id == bindparam("p_run_id", type_=RunRow.id.type))
        .values(
            status=bindparam("p_status", type_=RunRow.status.type),
            finished_at=bindparam("p_now", type_=RunRow.finished_at.type),
        )
    )


def _run_outcome(counts: Mapping[str, int]) -> RunStatus:
    """The status of a run whose jobs have all finished, from the number of jobs in each status."""
    if counts.get(JobStatus.ERROR) or counts.get(JobStatus.ABORTED):
        return RunStatus.FAILED
    if counts.get(JobStatus.SKIPPED) or counts.get(JobStatus.CANCELLED):
        return RunStatus.STOPPED
    return RunStatus.SUCCEEDED


def _finished_message(status: RunStatus, counts: Mapping[str, int]) -> str:
    summary = ", ".join(f"{n} {st.lower()}" for st, n in sorted(counts.items()))
    return f"run finished: {status} ({summary})"


@functools.cache
def _insert_finished_log() -> Insert:
    """The RUN_FINISHED log entry of a run (``_close_run_on_driver``)."""
    columns = LogEntryRow.__table__.c
    # Every column without a server-side value is given: on the driver, SQLAlchemy's defaults do not apply.
    return insert(LogEntryRow).values(
        kind=LogKind.RUN_FINISHED,
        retry=0,
        status=bindparam("p_status", type_=columns.status.type),
        package_name=bindparam("p_package", type_=columns.package_name.type),
        run_id=bindparam("p_run_id", type_=columns.run_id.type),
        message=bindparam("p_message", type_=columns.message.type),
        started_at=bindparam("p_now", type_=columns.started_at.type),
        finished_at=bindparam("p_now", type_=columns.finished_at.type),
    )


@functools.cache
def _lock_run_and_count_jobs() -> Select[Any]:
    """``_lock_run`` plus its jobs' counts by status (a JSON object), in one round trip (PostgreSQL)."""
    by_status = (
        select(JobRow.status, func.count().label("n"))
        .where(JobRow.run_id == bindparam("p_run_id", type_=JobRow.run_id.type))
        .group_by(JobRow.status)
        .subquery("by_status")
    )
    counts = select(func.json_object_agg(by_status.c.status, by_status.c.n)).scalar_subquery()
    return _lock_run().add_columns(counts.label("job_counts"))


@functools.cache
def _finish_log_and_next_queued() -> Select[Any]:
    """``_finish_run`` and ``_insert_finished_log`` run as CTEs of ``_next_queued_run``: one statement.

    PostgreSQL runs a data-modifying CTE to completion whether or not the query reads it; the query
    reads the package's queued runs, which neither of them changes.
    """
    finished = _finish_run().cte("finished_run")
    logged = _insert_finished_log().cte("finished_log")
    return _next_queued_run().add_cte(finished, logged)


@functools.cache
def _next_queued_run() -> Select[int]:
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
def _claim_and_log() -> Select[Any]:
    return one_statement.claim_and_log(_claim(redelivered=False))


def _end_params(
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
        "p_started_by": job.worker,
        "p_started_at": job.started_at,
    }


@functools.cache
def _hand_over(records_start: bool) -> Select[Any]:
    """The end of a job as DONE, then the claim of the next and its attempt's log entry, as one statement.

    Parameters: those of ``_end_attempt`` and p_next_job_id, p_celery_task_id, p_worker (NULL). The claim
    sees the snapshot the statement started with, where the ended job is still RUNNING: it requires the
    end to have happened and does not count that job among the unfinished earlier ones. Its commit is a
    normal, durable one, as an end's is.
    """
    end_job, end_log = _end_attempt(AttemptStatus.DONE, records_start)
    ended = end_job.returning(JobRow.id).cte("ended_job")
    claim = _claim(redelivered=False, handed_over=True).where(exists(select(ended.c.id)))
    return (
        one_statement.claim_and_log(claim, job_param="p_next_job_id", synchronous=True)
        .add_cte(ended)
        .add_cte(end_log.cte("ended_log"))
    )


@functools.cache
def _end_attempt(outcome: AttemptStatus, records_start: bool = False) -> tuple[Update, Update]:
    """(job update, log entry update) that end an attempt with ``outcome``.

    Parameters: p_job_id, p_log_id, p_now, p_error, p_traceback, p_planned_delay_s, and for a FAILED
    attempt (a retry is planned) p_retry and p_current_delay_s. With ``records_start`` (a handed-over job),
    also p_started_by and p_started_at: the attempt's worker and real start.
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
    log_values: dict[str, Any] = {}
    if records_start:
        started_by = bindparam("p_started_by", type_=JobRow.worker.type)
        values["worker"] = started_by
        log_values.update(
            worker=started_by, started_at=bindparam("p_started_at", type_=LogEntryRow.started_at.type)
        )
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
            **log_values,
        )
    )
    return end_job, end_log


@functools.cache
def _end_attempt_in_one_statement(outcome: AttemptStatus, records_start: bool) -> Update:
    return one_statement.both(*_end_attempt(outcome, records_start))


def _claimed_job(job_id: int, log_id: int, row: Any) -> ClaimedJob:
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


def _plan(run: RunRow, jobs: Sequence[JobRow]) -> RunPlan:
    return RunPlan(
        run_id=run.id,
        package=run.package_name,
        jobs=tuple(
            JobPlan(j.id, j.task, j.run_order, j.queue, j.soft_time_limit_s, j.time_limit_s) for j in jobs
        ),
    )


def plan_of(run_id: int, package: str, job_ids: Sequence[int], jobs: Sequence[Mapping[str, Any]]) -> RunPlan:
    """The plan of a run inserted as column values (``new_job_values``) with the ids they were given."""
    return RunPlan(
        run_id=run_id,
        package=package,
        jobs=tuple(
            JobPlan(job_id, j["task"], j["run_order"], j["queue"], j["soft_time_limit_s"], j["time_limit_s"])
            for job_id, j in zip(job_ids, jobs, strict=True)
        ),
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


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value.total_seconds())


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
