"""Engines for the store: SQLite (WAL, one writer at a time) or any SQLAlchemy URL such as PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError

from jqm_celery.errors import ConfigError
from jqm_celery.sqlite_files import write_ahead

_EXAMPLES = "e.g. 'sqlite:///jqm.sqlite' or 'postgresql+psycopg://user@127.0.0.1/jqm'"

#: A pooled server connection idle for longer than this is pinged before it is handed out. One used more
#: recently is trusted: pinging on every checkout (pool_pre_ping) would add a round trip to each of a job
#: attempt's two writes, and a connection that does fail is invalidated with the rest of the pool.
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "jqm_idle_since"


def parse_url(url: str) -> URL:
    """The parsed URL, or ConfigError naming the problem (the password is never shown)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"jqm_database_url is empty; set app.conf.jqm_database_url, {_EXAMPLES}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"jqm_database_url {redact(url)!r} is not a database URL; {_EXAMPLES}") from None
    if parsed.drivername == "postgres":
        raise ConfigError(
            f"jqm_database_url {redact(url)!r} uses the scheme 'postgres', which SQLAlchemy does not know; "
            "use 'postgresql+psycopg://…'"
        )
    return parsed


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, TypeError):
        return "<unparseable URL>"


def make_engine(url: str, *, sqlite_timeout_s: float = 30.0) -> Engine:
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, sqlite_timeout_s)
        engine = create_engine(parsed, pool_size=5, max_overflow=10)
        _ping_when_idle(engine, PING_AFTER_IDLE_S)
        return engine
    except NoSuchModuleError:
        raise ConfigError(
            f"jqm_database_url {redact(url)!r}: SQLAlchemy has no dialect '{parsed.drivername}'; {_EXAMPLES}"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"jqm_database_url {redact(url)!r} needs the driver module '{exc.name}', which is not installed; "
            "for PostgreSQL: pip install 'jqm-celery[postgres]'"
        ) from None


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since <= idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out a fresh one, which needs no ping.
            del record.info[_IDLE_SINCE]
            raise DisconnectionError(f"stale connection: {exc}") from exc


def _sqlite_engine(url: URL, timeout_s: float) -> Engine:
    engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so every transaction can BEGIN IMMEDIATE: writers
        # then queue on SQLite's lock instead of failing with "database is locked" on upgrade.
        dbapi_connection.isolation_level = None
        write_ahead(dbapi_connection)
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
