"""PostgreSQL: a job attempt's two statements, executed straight on the driver.

An attempt's start and its end are one statement each (``one_statement``). Run through SQLAlchemy's
``Connection``, each of them also costs a pool checkout and checkin, an isolation-level switch there and
back, parameter processing and a result wrapper: on a short task, more of the worker's CPU than the
statement itself. Here a statement is compiled to SQL once, and executed as a prepared statement on an
autocommit connection that the calling thread keeps (one per thread, so a threaded pool does not
serialise its jobs on one socket).

The kept connection is pinged before use when it has been idle for ``PING_AFTER_IDLE_S`` (the pool's own
rule), replaced once broken, never shared with a forked child, and closed when its engine is disposed. Its
plans use indexes even while the tables are small (``enable_seqscan`` off), see ``_connect``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from sqlalchemy import Engine, Select, event
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

from jqm_celery.store.engine import PING_AFTER_IDLE_S


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The statement's own constant parameters (statuses, kinds, increments), merged under the caller's.
    constants: dict[str, Any]
    #: The class of its rows (fields named after the returned columns), or None if it returns none.
    row: type[tuple[Any, ...]] | None
    #: Kept so that the id this is cached under is never reused by another statement.
    statement: ClauseElement


@dataclass
class _Held:
    pid: int
    fairy: Any
    connection: Any
    idle_since: float
    engine: weakref.ref[Engine]


_compiled: dict[tuple[int, str], _Compiled] = {}
_local = threading.local()
_lock = threading.Lock()
#: Every connection kept for an engine, by any thread of this process, to close when it is disposed.
_kept: weakref.WeakKeyDictionary[Engine, list[_Held]] = weakref.WeakKeyDictionary()
_listened: weakref.WeakSet[Engine] = weakref.WeakSet()


def execute_one(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
    """Run ``statement`` with ``params`` in autocommit; its first row (attributes by column name) or None.

    Inside ``transaction(engine)``, on the same thread, it runs in that transaction instead.
    """
    rows = _execute(engine, statement, params, every_row=False)
    return rows[0] if rows else None


def execute_all(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
    """Like ``execute_one``, but every row."""
    return _execute(engine, statement, params, every_row=True)


@contextmanager
def transaction(engine: Engine) -> Iterator[None]:
    """The statements this thread runs with ``execute_one`` / ``execute_all`` in the block: one transaction.

    It commits when the block ends and rolls back if it raises.
    """
    held = _connection(engine)
    try:
        with held.connection.transaction():
            yield
    except Exception:
        if held.connection.broken or held.connection.closed:
            _drop(engine, held)
        raise
    held.idle_since = time.monotonic()


def _execute(
    engine: Engine, statement: ClauseElement, params: Mapping[str, Any], *, every_row: bool
) -> list[Any]:
    compiled = _compile(engine, statement)
    held = _connection(engine)
    try:
        cursor = held.connection.execute(compiled.sql, {**compiled.constants, **params})
        if compiled.row is None:
            values = []
        elif every_row:
            values = cursor.fetchall()
        else:
            first = cursor.fetchone()
            values = [] if first is None else [first]
    except Exception:
        if held.connection.broken or held.connection.closed:
            _drop(engine, held)
        raise
    held.idle_since = time.monotonic()
    if compiled.row is None:
        return []
    return [compiled.row._make(row) for row in values]  # type: ignore[attr-defined]


def _compile(engine: Engine, statement: ClauseElement) -> _Compiled:
    key = (id(statement), engine.dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        done = cast(SQLCompiler, statement.compile(dialect=engine.dialect))
        callers = [name for name in done.params if name.startswith("p_")]
        # An IN list is one expanding parameter, rendered anew on each execution; expanded once here (with
        # placeholders for the caller's parameters), the SQL is fixed and its constants are known.
        expanded = done.construct_expanded_state(dict.fromkeys(callers))
        constants = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in expanded.parameters.items()
            if not name.startswith("p_")
        }
        compiled = _Compiled(expanded.statement, constants, _row_class(statement), statement)
        _compiled[key] = compiled
    return compiled


def _row_class(statement: ClauseElement) -> type[tuple[Any, ...]] | None:
    if isinstance(statement, Select):
        names = list(statement.selected_columns.keys())
    elif isinstance(statement, UpdateBase):
        names = [column["name"] for column in statement.returning_column_descriptions]
    else:
        names = []
    return namedtuple("Row", names) if names else None


def _connection(engine: Engine) -> _Held:
    by_engine: weakref.WeakKeyDictionary[Engine, _Held] | None = getattr(_local, "by_engine", None)
    if by_engine is None:
        by_engine = _local.by_engine = weakref.WeakKeyDictionary()
        # A thread's locals go when it ends: its kept connections are closed then, so an application that
        # starts a thread per request (and enqueues jobs from it) does not pile up idle connections.
        weakref.finalize(by_engine, _close_thread, _local.__dict__.setdefault("held", []))
    held = by_engine.get(engine)
    if held is not None and held.pid == os.getpid() and not held.connection.closed:
        if time.monotonic() - held.idle_since <= PING_AFTER_IDLE_S:
            return held
        try:
            held.connection.execute("SELECT 1")
            return held
        except Exception:
            _drop(engine, held)
    held = _connect(engine)
    by_engine[engine] = held
    return held


def _connect(engine: Engine) -> _Held:
    fairy = engine.raw_connection()
    connection: Any = fairy.driver_connection
    # Out of the pool for good: this thread keeps it, and closing it closes the connection.
    fairy.detach()
    connection.autocommit = True
    # Every statement run here finds its rows through an index (primary keys, a run's jobs). Prepared, a
    # statement soon runs a generic plan made once for the connection's life; made while the tables are
    # still small, that plan would read them whole, and keep doing so as they grow.
    connection.execute("SET enable_seqscan = off")
    held = _Held(os.getpid(), fairy, connection, time.monotonic(), weakref.ref(engine))
    _local.held.append(held)
    with _lock:
        if engine not in _listened:
            _listened.add(engine)
            event.listen(engine, "engine_disposed", _close_kept)
        _kept.setdefault(engine, []).append(held)
    return held


def _drop(engine: Engine, held: _Held) -> None:
    with _lock:
        kept = _kept.get(engine, [])
        if held in kept:
            kept.remove(held)
    mine = getattr(_local, "held", [])
    if held in mine:
        mine.remove(held)
    _close(held)


def _close_thread(held: list[_Held]) -> None:
    for each in held:
        engine = each.engine()
        if engine is None:
            _close(each)
        else:
            _drop(engine, each)


def _close_kept(engine: Engine) -> None:
    with _lock:
        kept = _kept.pop(engine, [])
    for held in kept:
        _close(held)


def _close(held: _Held) -> None:
    # A forked child must never close its parent's connection: the socket is the parent's session.
    if held.pid != os.getpid() or held.connection.closed:
        return
    try:
        held.fairy.close()
    except Exception:
        held.connection.close()
