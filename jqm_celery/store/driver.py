"""The store's hot statements (an attempt's, a run's close, starting runs), executed straight on the driver
(PostgreSQL's psycopg, SQLite's sqlite3).

Run through SQLAlchemy's ``Connection`` (and on SQLite its ORM ``Session``), a statement of an attempt
also costs a pool checkout and checkin, an isolation-level switch there and back, parameter processing and
a result wrapper: on a short task, more of the worker's CPU than the statement itself. Here a statement is
compiled to SQL once, and executed on an autocommit connection the process keeps for the driver; on
PostgreSQL as a prepared statement.

The kept connections are a small pool of their own, apart from the engine's: a statement, or a
``transaction``, takes one for its duration and gives it back (threads running at once each get their
own, so a threaded pool does not serialise its jobs on one socket). Up to ``KEEP_IDLE`` stay open
between uses; one given back beyond that is closed, so a client whose many threads start runs holds no
more connections than it uses at once.

On PostgreSQL, psycopg takes and gives the Python values as they are. On SQLite, the columns' own
conversions (times as UTC text, JSON as text) are applied to parameters and rows, as SQLAlchemy applies
them; ``transaction`` begins with ``BEGIN IMMEDIATE``, as the store's engine does, and the caller holds
the file's ``WriteLock`` around it (``SQLiteWriter``).

A kept connection is pinged before use when it has been idle for ``PING_AFTER_IDLE_S`` (the pool's own
rule), replaced once broken, never shared with a forked child, and closed when its engine is disposed. On
PostgreSQL its plans use indexes even while the tables are small (``enable_seqscan`` off), see
``_connect``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from sqlalchemy import Engine, Select, event
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from jqm_celery.store.engine import PING_AFTER_IDLE_S


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The statement's own constant parameters (statuses, kinds, increments), merged under the caller's.
    constants: dict[str, Any]
    #: The class of its rows (fields named after the returned columns), or None if it returns none.
    row: type[tuple[Any, ...]] | None
    #: SQLite: the conversions of parameters (by name) and of a row's values (in order); none on PostgreSQL.
    binds: dict[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    #: The parameters' names in the order of the SQL's placeholders, if they are positional (SQLite's).
    positions: tuple[str, ...] | None
    #: Each list parameter of an IN (an expanding one) and the names its values take in the SQL.
    expansion: dict[str, tuple[str, ...]]
    #: Kept so that the id this is cached under is never reused by another statement.
    statement: ClauseElement


@dataclass
class _Held:
    pid: int
    fairy: Any
    connection: Any
    idle_since: float
    engine: weakref.ref[Engine]
    sqlite: bool
    #: Closed here (sqlite3's connections do not tell).
    dropped: bool = False
    #: SQLite: a transaction could not be rolled back (sqlite3's connections do not tell either).
    failed: bool = False


_compiled: dict[tuple[int, str, tuple[int, ...]], _Compiled] = {}
#: An IN list's SQL depends on its length: kept for lists of up to this many values (a ``run_now`` names
#: one package), built on each call for longer ones (``run_now_many``), so the cache stays small.
_KEEP_EXPANDED_UP_TO = 16
#: The caller's IN lists of each statement compiled so far (with the statement, so that its id is never
#: reused by another).
_expanding: dict[tuple[int, str], tuple[tuple[str, ...], ClauseElement]] = {}
#: Kept connections left open between uses, for each engine (the engine's own pool keeps as many).
KEEP_IDLE = 5
_local = threading.local()
_lock = threading.Lock()
#: Every connection kept for an engine in this process, idle or in use, to close when it is disposed.
_kept: weakref.WeakKeyDictionary[Engine, list[_Held]] = weakref.WeakKeyDictionary()
#: The idle ones, by engine, the last given back at the end (see ``_waiting``).
_idle: weakref.WeakKeyDictionary[Engine, list[_Held]] = weakref.WeakKeyDictionary()
_listened: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_after_fork() -> None:
    """In a forked child: the parent's connections are the parent's sessions, never used or closed here;
    and the lock starts free, even if another thread of the parent held it at the fork."""
    global _lock
    _lock = threading.Lock()
    _idle.clear()
    _kept.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def execute_one(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
    """Run ``statement`` with ``params`` in autocommit; its first row (attributes by column name) or None.

    Inside ``transaction(engine)``, on the same thread, it runs in that transaction instead.
    """
    rows = _execute(engine, statement, params, every_row=False)
    return rows[0] if rows else None


def execute_all(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
    """Like ``execute_one``, but every row."""
    return cast(list[Any], _execute(engine, statement, params, every_row=True))


@contextmanager
def transaction(engine: Engine) -> Iterator[None]:
    """The statements this thread runs with ``execute_one`` / ``execute_all`` in the block: one transaction.

    It commits when the block ends and rolls back if it raises.
    The connection is this thread's for the block: what it runs with ``execute_one`` / ``execute_all``
    there joins the transaction (a ``transaction`` inside it is a savepoint on PostgreSQL).
    """
    pinned: dict[Engine, _Held] = _local.__dict__.setdefault("pinned", {})
    outer = pinned.get(engine)
    held = outer or _take(engine)
    try:
        with ExitStack() as stack:
            try:
                stack.enter_context(_begun(held))
            except Exception:
                # Lost before the transaction began (the server restarted within the idle time that skips
                # the ping): nothing of it ran, so it begins again on a new connection.
                if outer is not None or not _broken(held):
                    raise
                _drop(engine, held)
                held = _take(engine)
                stack.enter_context(_begun(held))
            pinned[engine] = held
            try:
                yield
            finally:
                if outer is None:
                    del pinned[engine]
    except Exception:
        if outer is None:
            _give(engine, held)
        raise
    if outer is None:
        _give(engine, held)


def _begun(held: _Held) -> AbstractContextManager[Any]:
    """The transaction's context: entered, it has begun; left, it commits, or rolls back on an error."""
    return _sqlite_transaction(held) if held.sqlite else held.connection.transaction()


def execute_count(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> int:
    """Run ``statement`` (one that returns no rows) like ``execute_one``; the number of rows it wrote."""
    return cast(int, _execute(engine, statement, params, every_row=None))


@contextmanager
def _sqlite_transaction(held: _Held) -> Iterator[None]:
    connection = held.connection
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        # (A COMMIT that failed leaves the transaction open too.)
        if connection.in_transaction:
            try:
                connection.execute("ROLLBACK")
            except Exception:
                held.failed = True
        raise


def _broken(held: _Held) -> bool:
    if held.sqlite:
        # A file's connection is not lost as a socket is: it goes on after an error, unless its
        # transaction could not be rolled back.
        return held.failed
    return bool(held.connection.broken or held.connection.closed)


def _closed(held: _Held) -> bool:
    return held.dropped or (not held.sqlite and bool(held.connection.closed))


def _execute(
    engine: Engine, statement: ClauseElement, params: Mapping[str, Any], *, every_row: bool | None
) -> Any:
    """The statement's rows (every one, or the first); with ``every_row`` None, its row count."""
    compiled = _compile(engine, statement, params)
    values = {**compiled.constants, **params}
    for name, names in compiled.expansion.items():
        values.update(zip(names, values.pop(name), strict=True))
    for name, convert in compiled.binds.items():
        values[name] = convert(values[name])
    pinned = _local.__dict__.get("pinned", {}).get(engine)
    held = pinned or _take(engine)
    try:
        if compiled.positions is not None:
            cursor = held.connection.execute(compiled.sql, [values[name] for name in compiled.positions])
        else:
            cursor = held.connection.execute(compiled.sql, values)
        if every_row is None:
            return cursor.rowcount
        if compiled.row is None:
            rows = []
        elif every_row:
            rows = cursor.fetchall()
        else:
            first = cursor.fetchone()
            rows = [] if first is None else [first]
    finally:
        if pinned is None:
            _give(engine, held)
    if compiled.row is None:
        return []
    if compiled.results:
        rows = [_converted(row, compiled.results) for row in rows]
    return [compiled.row._make(row) for row in rows]  # type: ignore[attr-defined]


def _converted(row: tuple[Any, ...], results: tuple[Callable[[Any], Any] | None, ...]) -> tuple[Any, ...]:
    pairs = zip(row, results, strict=True)
    return tuple(value if convert is None else convert(value) for value, convert in pairs)


def _compile(engine: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> _Compiled:
    """The statement's SQL for ``engine``, built once (for each length of its IN lists, ``params``')."""
    base = (id(statement), engine.dialect.name)
    lengths = tuple(len(params[name]) for name in _expanding.get(base, ((), statement))[0])
    compiled = _compiled.get((*base, lengths))
    if compiled is None:
        done = cast(SQLCompiler, statement.compile(dialect=engine.dialect))
        callers = [name for name in done.params if name.startswith("p_")]
        expanding = tuple(name for name in callers if done.binds[name].expanding)
        _expanding[base] = expanding, statement
        lengths = tuple(len(params[name]) for name in expanding)
        # An IN list is one expanding parameter, rendered anew on each execution; expanded once here (with
        # placeholders for the caller's parameters), the SQL is fixed and its constants are known.
        placeholders = {name: [None] * len(params[name]) if name in expanding else None for name in callers}
        expanded = done.construct_expanded_state(placeholders)
        expansion = {name: tuple(expanded.parameter_expansion[name]) for name in expanding}
        constants = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in expanded.parameters.items()
            if not name.startswith("p_")
        }
        binds: dict[str, Callable[[Any], Any]] = {}
        results: tuple[Callable[[Any], Any] | None, ...] = ()
        if engine.dialect.name == "sqlite":
            # The statement's own conversions by name, and those of the names an IN list expanded to.
            named = cast(dict[str, Any], {**done._bind_processors, **expanded.processors})
            binds = {name: named[name] for name in expanded.parameters if named.get(name) is not None}
            results = tuple(
                column.type._cached_result_processor(engine.dialect, None) for column in done._result_columns
            )
        positions = None if expanded.positiontup is None else tuple(expanded.positiontup)
        row = _row_class(statement, done)
        compiled = _Compiled(
            expanded.statement, constants, row, binds, results, positions, expansion, statement
        )
        if all(length <= _KEEP_EXPANDED_UP_TO for length in lengths):
            _compiled[(*base, lengths)] = compiled
    return compiled


def _row_class(statement: ClauseElement, compiled: SQLCompiler) -> type[tuple[Any, ...]] | None:
    if isinstance(statement, Select):
        names = list(statement.selected_columns.keys())
    else:
        # (Not the statement's ``returning_column_descriptions``: read on an UPDATE without RETURNING, it
        # leaves the statement's copies made later with ``returning()`` without their columns.)
        names = [column.keyname for column in compiled._result_columns]
    return namedtuple("Row", names) if names else None


def _waiting(engine: Engine) -> list[_Held]:
    """The engine's idle connections (call with ``_lock`` held): this process's, or this thread's where the
    engine's pool gives each thread a database of its own (SQLite's ``:memory:``, see ``_connect``)."""
    if isinstance(engine.pool, SingletonThreadPool | StaticPool):
        own: weakref.WeakKeyDictionary[Engine, list[_Held]] | None = _local.__dict__.get("own")
        if own is None:
            own = _local.own = weakref.WeakKeyDictionary()
            # A thread's locals go when it ends: its connections are closed then.
            weakref.finalize(own, _close_idle, _local.__dict__.setdefault("own_lists", []))
        waiting = own.get(engine)
        if waiting is None:
            waiting = own[engine] = []
            _local.own_lists.append(waiting)
        return waiting
    return _idle.setdefault(engine, [])


def _close_idle(lists: list[list[_Held]]) -> None:
    for waiting in lists:
        for held in waiting:
            engine = held.engine()
            if engine is None:
                _close(held)
            else:
                _drop(engine, held)


def _take(engine: Engine) -> _Held:
    """A kept connection for one use (given back with ``_give``): the last one given back, else a new one."""
    while True:
        with _lock:
            waiting = _waiting(engine)
            held = waiting.pop() if waiting else None
        if held is None:
            return _connect(engine)
        if _closed(held) or held.pid != os.getpid():
            continue
        if time.monotonic() - held.idle_since <= PING_AFTER_IDLE_S:
            return held
        try:
            held.connection.execute("SELECT 1")
            return held
        except Exception:
            _drop(engine, held)


def _give(engine: Engine, held: _Held) -> None:
    """Back among the idle connections after a use; dropped if it broke, closed if enough are idle."""
    if _broken(held):
        _drop(engine, held)
        return
    if _closed(held) or held.pid != os.getpid():
        return
    held.idle_since = time.monotonic()
    with _lock:
        waiting = _waiting(engine)
        if len(waiting) < KEEP_IDLE:
            waiting.append(held)
            return
    _drop(engine, held)


def _connect(engine: Engine) -> _Held:
    fairy = engine.raw_connection()
    connection: Any = fairy.driver_connection
    if not isinstance(engine.pool, SingletonThreadPool | StaticPool):
        # Out of the pool for good: the driver keeps it, and closing it closes the connection.
        fairy.detach()
    # (Else the pool's connection is the database itself, as for SQLite's ":memory:": kept checked out,
    # it is the one the store's sessions on this thread get from the pool too.)
    sqlite = engine.dialect.name == "sqlite"
    if not sqlite:
        # (SQLite's connections are in autocommit already: the store's engine takes over its BEGINs.)
        connection.autocommit = True
        # Every statement run here finds its rows through an index (primary keys, a run's jobs). Prepared,
        # a statement soon runs a generic plan made once for the connection's life; made while the tables
        # are still small, that plan would read them whole, and keep doing so as they grow.
        connection.execute("SET enable_seqscan = off")
    held = _Held(os.getpid(), fairy, connection, time.monotonic(), weakref.ref(engine), sqlite)
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
    _close(held)


def _close_kept(engine: Engine) -> None:
    with _lock:
        kept = _kept.pop(engine, [])
        _idle.pop(engine, None)
    for held in kept:
        _close(held)


def _close(held: _Held) -> None:
    # A forked child must never close its parent's connection: the socket is the parent's session.
    if held.pid != os.getpid() or _closed(held):
        return
    held.dropped = True
    try:
        held.fairy.close()
    except Exception:
        held.connection.close()
