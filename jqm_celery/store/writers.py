"""How the store writes on one kind of database: one writer, chosen once when the store opens.

Every writer has the same methods and the same meaning (``tests/store/test_writers.py`` holds them to
it); they differ only in how many round trips a write costs:

- ``PortableWriter`` (any database SQLAlchemy supports): SQLAlchemy Core, each write a short transaction.
- ``SQLiteWriter``: on a database that runs one write transaction at a time, so beat's ticks take turns
  through a lease, writers queue on the file's ``WriteLock``, and an embedded store migrates itself. An
  attempt's claim and end, a run's close and the start of runs are the portable writer's statements, run
  straight on a connection the driver keeps (``driver``): the same rows, without SQLAlchemy's
  per-statement work.
- ``PostgresWriter``: each write of an attempt one autocommitted prepared statement on the worker's kept
  connection (``one_statement``, ``driver``); the start of runs and a run's close prepared statements in
  one transaction there; many rows in one statement from one JSON parameter (``bulk``).

Starting runs is written once (``RunStore.start_runs``, ``lifecycle.open_runs``) against ``Writes``, the
statements of one transaction, which each writer runs its own way (``writes()``).

The statements run on the driver name only the columns they set; the database supplies the others'
defaults (migration 0006).

Nothing outside this module asks which database the store is on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, Connection, CursorResult, Engine, Executable, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from jqm_celery.events import Event
from jqm_celery.plans import ClaimedJob, RunClosed
from jqm_celery.sqlite_files import WriteLock
from jqm_celery.statuses import FINISHED_JOB, AttemptStatus, LogKind, RunStatus
from jqm_celery.store import bulk, driver, lifecycle, log, statements
from jqm_celery.store.models import Base, JobRow, LogEntryRow

if TYPE_CHECKING:
    from jqm_celery.store.base import StoreBase

#: The key, in a session's ``info``, of the store's writer (see ``of``).
WRITER = "jqm_writer"
_FINISHED = [s.value for s in FINISHED_JOB]
#: One row's column values, by column name.
Row = Mapping[str, Any]


class Writes:
    """The statements of one transaction, run as the store's writer runs them: what starting runs takes
    (``RunStore.start_runs``, ``lifecycle.open_runs``), on a session or on the driver."""

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        """The rows of a Core statement (attributes by column name)."""
        raise NotImplementedError

    def insert_rows(self, model: type[Base], rows: Sequence[Row]) -> list[int]:
        """``PortableWriter.insert_rows`` in this transaction."""
        raise NotImplementedError

    def log(self, lines: Sequence[log.LogLine]) -> None:
        """``log.write`` in this transaction: the entries, and their events once it commits."""
        raise NotImplementedError


class SessionWrites(Writes):
    """The statements run in an ORM session's transaction (``Store.transaction``)."""

    def __init__(self, s: Session) -> None:
        self.session = s

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        return self.session.connection().execute(statement, params).all()

    def insert_rows(self, model: type[Base], rows: Sequence[Row]) -> list[int]:
        return of(self.session).insert_rows(self.session.connection(), model, rows)

    def log(self, lines: Sequence[log.LogLine]) -> None:
        log.write(self.session, lines)


class _DriverWrites(Writes):
    """The statements run on the driver's kept connection, in ``driver.transaction``."""

    def __init__(self, writer: _DriverWriter, events: list[Event]) -> None:
        self.writer, self.events = writer, events

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Any]:
        return driver.execute_all(self.writer.store.engine, cast(ClauseElement, statement), params)

    def insert_rows(self, model: type[Base], rows: Sequence[Row]) -> list[int]:
        return self.writer.insert_on_driver(model, rows)

    def log(self, lines: Sequence[log.LogLine]) -> None:
        if lines:
            self.writer.insert_on_driver(LogEntryRow, [line.values() for line in lines])
            self.events.extend(line.event() for line in lines)


class PortableWriter:
    """SQLAlchemy Core, each write one short transaction: any database."""

    #: Beat's ticks take turns through a lease (the database cannot skip rows another tick has locked).
    ticks_take_turns = False
    #: A store on this database migrates itself on first use unless told otherwise (the embedded default).
    migrates_itself = False

    def __init__(self, store: StoreBase) -> None:
        self.store = store

    def write_lock(self) -> AbstractContextManager[None]:
        """What a transaction of the store holds from before it begins to after it ends: nothing here."""
        return nullcontext()

    @contextmanager
    def writes(self) -> Iterator[Writes]:
        """One transaction of ``Writes`` (starting runs): here the store's session."""
        with self.store.transaction() as s:
            yield SessionWrites(s)

    # -- an attempt -------------------------------------------------------------------------

    def claim(self, params: Mapping[str, Any]) -> ClaimedJob | None:
        """Claim a job delivered for the first time and log its attempt (params: see ``statements.claim``)."""
        with self.store.transaction() as s:
            return claim_in(s, params, redelivered=False)

    def end(self, outcome: AttemptStatus, params: Mapping[str, Any], events: list[Event]) -> bool:
        """End an attempt and its job (params: see ``statements.end_attempt``); ``events`` are published
        once written. False if the attempt was no longer running: then nothing is written."""
        end_job, end_log = statements.end_attempt(outcome)
        with self.store.transaction() as s:
            conn = s.connection()  # Core execution, as in claim_in
            if not cast(CursorResult[Any], conn.execute(end_log, params)).rowcount:
                return False
            conn.execute(end_job, params)
            log.publish(s, events)
            return True

    def job_status(self, job_id: int) -> str | None:
        """The job's status now (None: no such job)."""
        with self.store.transaction() as s:
            return s.scalar(statements.job_status(), {"p_job_id": job_id})

    # -- a run ------------------------------------------------------------------------------

    def close_run(self, run_id: int, now: datetime) -> RunClosed | None:
        """``lifecycle.close`` in a transaction of its own."""
        with self.store.transaction() as s:
            return lifecycle.close(s, run_id, now)

    # -- stand-alone jobs -------------------------------------------------------------------

    def add_jobs(self, values: list[dict[str, Any]]) -> list[int]:
        """Insert new jobs' rows; their ids, in order."""
        with self.store.transaction() as s:
            return self.insert_rows(s.connection(), JobRow, values)

    # -- many rows --------------------------------------------------------------------------

    def insert_rows(
        self, conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        """Insert ``rows`` (without ``id``, all setting the same columns); their new ids, in order."""
        return bulk.insert_many(conn, model, rows)

    def add_rows(self, conn: Connection, model: type[Base], rows: Sequence[Row]) -> None:
        """Insert ``rows`` when their ids are not needed; rows may set different columns."""
        bulk.add_many(conn, model, rows)

    def update_rows(
        self, conn: Connection, model: type[Base], rows: Sequence[Row], *, key: str = "id"
    ) -> None:
        """Update the table's rows by ``key`` (every row has the key and the same other columns)."""
        bulk.update_many(conn, model, rows, key=key)

    def add_new_rows(self, s: Session, model: type[Base], rows: Sequence[Row]) -> None:
        """Insert those of ``rows`` that no unique key of the table already has; leave the others."""
        for row in rows:
            try:
                with s.begin_nested():
                    s.execute(insert(model).values(row))
            except IntegrityError:
                continue


class _DriverWriter(PortableWriter):
    """A run's close as statements on the driver's kept connection (``driver``), in one transaction: a
    one-job run is closed by its job, on the worker, once per run. The writers below differ only in how
    many statements the lock and the finish take (``_locked_run``, ``_finish_and_next_queued``)."""

    @contextmanager
    def _on_driver(self) -> Iterator[Engine]:
        """One transaction on the driver's kept connection, under the database's write lock."""
        engine = self.store.engine
        self.store.ensure_schema_once()
        with self.write_lock(), driver.transaction(engine):
            yield engine

    @contextmanager
    def writes(self) -> Iterator[Writes]:
        """One transaction of ``Writes`` on the driver; the log entries' events once it has committed."""
        events: list[Event] = []
        with self._on_driver():
            yield _DriverWrites(self, events)
        if events and self.store.listeners:
            self.store._publish(events)

    def insert_on_driver(self, model: type[Base], rows: Sequence[Row]) -> list[int]:
        """``insert_rows`` on the driver, in its transaction: one statement a row (SQLite runs in-process)."""
        engine = self.store.engine
        return [
            driver.execute_one(engine, statements.insert_row(model, tuple(row)), self._params(model, row)).id
            for row in rows
        ]

    def _params(self, model: type[Base], row: Row) -> dict[str, Any]:
        """A row's values as ``statements.insert_row``'s parameters."""
        return {f"p_{name}": value.value if isinstance(value, Enum) else value for name, value in row.items()}

    def close_run(self, run_id: int, now: datetime) -> RunClosed | None:
        """``lifecycle.close`` on the driver.

        A run whose package must be stopped (FINISH_THEN_STOP) is closed by the portable ``close``. A
        queued run behind this one is started as ``lifecycle.end`` starts it, in a transaction of its own.
        """
        with self._on_driver():
            locked = self._locked_run(run_id)
            if locked is None or RunStatus(locked[0].status).finished:
                return None
            run, counts = locked
            stops_package = bool(run.stop_package_after)
            following = None if stops_package else self._finish(run, counts, run_id, now)
        if stops_package:
            # After the driver's transaction, which held the run's lock, has ended.
            return super().close_run(run_id, now)
        if following is None:
            return None
        status, message, next_queued = following
        if self.store.listeners:
            finished = LogKind.RUN_FINISHED, status.value, now, run.package_name, run_id
            self.store._publish([Event(*finished, message=message, notify=run.notifies)])
        next_run = None
        if next_queued is not None:
            with self.store.transaction() as s:
                next_run = lifecycle.start_next(s, run.package_name, now)
        return RunClosed(run_id, run.package_name, status, False, next_run)

    def _locked_run(self, run_id: int) -> tuple[Any, dict[str, int]] | None:
        """The run, locked (``statements.lock_run``'s columns), and its jobs' counts by status."""
        raise NotImplementedError

    def _finish_and_next_queued(self, params: dict[str, Any]) -> Any:
        """``statements.finish_run`` and ``insert_finished_log``; then the package's next queued run."""
        raise NotImplementedError

    def _finish(
        self, run: Any, counts: dict[str, int], run_id: int, now: datetime
    ) -> tuple[RunStatus, str, Any] | None:
        """The end of a locked run whose jobs have all finished; None if some have not."""
        if any(status not in _FINISHED for status in counts):
            # On PostgreSQL the counts were read in the snapshot taken before the lock was granted: a
            # transaction that held it may have finished jobs since. Finished is final, so only this needs
            # a look.
            counts = dict(
                driver.execute_all(self.store.engine, statements.job_counts(), {"p_run_id": run_id})
            )
            if any(status not in _FINISHED for status in counts):
                return None
        status = lifecycle.outcome(counts)
        message = lifecycle.finished_message(status, counts)
        params = {
            "p_status": status.value,
            "p_package": run.package_name,
            "p_run_id": run_id,
            "p_message": message,
            "p_now": now,
        }
        return status, message, self._finish_and_next_queued(params)


class SQLiteWriter(_DriverWriter):
    """SQLite: one write transaction at a time, an embedded store, and an attempt's writes on the driver."""

    ticks_take_turns = True
    migrates_itself = True

    def write_lock(self) -> AbstractContextManager[None]:
        """The file's ``WriteLock``: writers wait for each other on it rather than in SQLite's polling."""
        return nullcontext() if self._write_lock is None else self._write_lock.held()

    @functools.cached_property
    def _write_lock(self) -> WriteLock | None:
        database = self.store.engine.url.database
        return WriteLock.of(database) if database and database != ":memory:" else None

    def claim(self, params: Mapping[str, Any]) -> ClaimedJob | None:
        """The claim and its attempt's log entry as the portable writer's, straight on the driver."""
        with self._on_driver() as engine:
            row = driver.execute_one(engine, statements.claim(redelivered=False), params)
            if row is None:
                return None
            attempt = statements.attempt_params(params, row)
            logged = driver.execute_one(engine, statements.insert_attempt(), attempt)
        return statements.claimed_job(params["p_job_id"], logged.id, row)

    def end(self, outcome: AttemptStatus, params: Mapping[str, Any], events: list[Event]) -> bool:
        """The end as the portable writer's, straight on the driver."""
        end_job, end_log = statements.end_attempt(outcome)
        with self._on_driver() as engine:
            if not driver.execute_count(engine, end_log, params):
                return False
            driver.execute_count(engine, end_job, params)
        if events and self.store.listeners:
            self.store._publish(events)
        return True

    def _locked_run(self, run_id: int) -> tuple[Any, dict[str, int]] | None:
        # (The transaction's BEGIN IMMEDIATE holds the whole file: a run needs no lock of its own.)
        engine, params = self.store.engine, {"p_run_id": run_id}
        run = driver.execute_one(engine, statements.lock_run(), params)
        return (
            None if run is None else (run, dict(driver.execute_all(engine, statements.job_counts(), params)))
        )

    def _finish_and_next_queued(self, params: dict[str, Any]) -> Any:
        engine = self.store.engine
        driver.execute_count(engine, statements.finish_run(), params)
        driver.execute_count(engine, statements.insert_finished_log(), params)
        return driver.execute_one(engine, statements.next_queued_run(), params)

    def add_new_rows(self, s: Session, model: type[Base], rows: Sequence[Row]) -> None:
        s.execute(sqlite.insert(model).values(list(rows)).on_conflict_do_nothing())


class PostgresWriter(_DriverWriter):
    """Each write of an attempt one prepared statement on the worker's kept connection; rows as JSON."""

    def claim(self, params: Mapping[str, Any]) -> ClaimedJob | None:
        claimed = self._execute(statements.claim_and_log(), params)
        return (
            None if claimed is None else statements.claimed_job(params["p_job_id"], claimed.log_id, claimed)
        )

    def end(self, outcome: AttemptStatus, params: Mapping[str, Any], events: list[Event]) -> bool:
        ended = self._execute(statements.end_attempt_in_one_statement(outcome), params)
        if not ended.attempts:
            return False
        if events and self.store.listeners:
            self.store._publish(events)
        return True

    def _locked_run(self, run_id: int) -> tuple[Any, dict[str, int]] | None:
        run = driver.execute_one(
            self.store.engine, statements.lock_run_and_count_jobs(), {"p_run_id": run_id}
        )
        return None if run is None else (run, run.job_counts or {})

    def _finish_and_next_queued(self, params: dict[str, Any]) -> Any:
        return driver.execute_one(self.store.engine, statements.finish_log_and_next_queued(), params)

    def insert_on_driver(self, model: type[Base], rows: Sequence[Row]) -> list[int]:
        if len(rows) <= 1:
            return super().insert_on_driver(model, rows)
        # Many rows: one statement, as ``insert_rows`` (``bulk``).
        statement, params = bulk.json_insert(self.store.engine.dialect, model, rows)
        return [row.id for row in driver.execute_all(self.store.engine, statement, params)]

    def _params(self, model: type[Base], row: Row) -> dict[str, Any]:
        params = super()._params(model, row)
        for name in _json_columns(model):
            if name in row:
                params[f"p_{name}"] = json.dumps(row[name])
        return params

    def add_jobs(self, values: list[dict[str, Any]]) -> list[int]:
        if len(values) != 1:
            return super().add_jobs(values)
        # One autocommitted prepared statement on this thread's kept connection, as for an attempt: a
        # lone job costs one round trip (BEGIN and COMMIT would be two more) and no pool checkout.
        self.store.ensure_schema_once()
        return self.insert_on_driver(JobRow, values)

    def insert_rows(
        self, conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        return bulk.insert_json(conn, model, rows)

    def add_rows(self, conn: Connection, model: type[Base], rows: Sequence[Row]) -> None:
        bulk.add_json(conn, model, rows)

    def update_rows(
        self, conn: Connection, model: type[Base], rows: Sequence[Row], *, key: str = "id"
    ) -> None:
        bulk.update_json(conn, model, rows, key=key)

    def add_new_rows(self, s: Session, model: type[Base], rows: Sequence[Row]) -> None:
        s.execute(postgresql.insert(model).values(list(rows)).on_conflict_do_nothing())

    def _execute(self, statement: Any, params: Mapping[str, Any]) -> Any:
        self.store.ensure_schema_once()
        return driver.execute_one(self.store.engine, statement, dict(params))


@functools.cache
def _json_columns(model: type[Base]) -> tuple[str, ...]:
    """The JSON columns of ``model``'s table: psycopg takes their values as JSON text."""
    return tuple(column.name for column in model.__table__.c if isinstance(column.type, JSON))


def writer_for(store: StoreBase) -> PortableWriter:
    """The writer of ``store``'s database."""
    kinds: dict[str, type[PortableWriter]] = {"postgresql": PostgresWriter, "sqlite": SQLiteWriter}
    return kinds.get(store.engine.dialect.name, PortableWriter)(store)


def of(s: Session) -> PortableWriter:
    """The writer of the store whose transaction ``s`` is."""
    writer: PortableWriter = s.info[WRITER]
    return writer


#: Why a claim that takes over its own message's RUNNING job closes the attempt it finds (``claim_in``).
REDELIVERED = (
    "the worker running this attempt was lost before its end was written (its body may have returned); "
    "the job was delivered again"
)


def claim_in(
    s: Session, params: Mapping[str, Any], *, redelivered: bool, reason: str = REDELIVERED
) -> ClaimedJob | None:
    """Claim a job and log its attempt in transaction ``s``.

    ``redelivered``: the job's own message may take it over when it is RUNNING; the attempt found is
    closed as INTERRUPTED, ``reason`` its error.
    """
    # Core execution on the session's connection: the ORM's bulk-DML bookkeeping (synchronising a
    # session that holds no objects) costs more than the statements themselves on this hot path.
    conn = s.connection()
    row = conn.execute(statements.claim(redelivered), params).one_or_none()
    if row is None:
        return None
    job_id, now = params["p_job_id"], params["p_now"]
    if redelivered:
        conn.execute(
            statements.close_running_attempt(
                job_id,
                AttemptStatus.INTERRUPTED,
                now,
                reason,
            )
        )
    log_id = conn.execute(statements.insert_attempt(), statements.attempt_params(params, row)).scalar_one()
    return statements.claimed_job(job_id, log_id, row)
