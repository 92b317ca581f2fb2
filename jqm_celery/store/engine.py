"""Engines for the store: SQLite (WAL, one writer at a time) or any SQLAlchemy URL such as PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from jqm_celery.errors import ConfigError

_EXAMPLES = "e.g. 'sqlite:///jqm.sqlite' or 'postgresql+psycopg://user@127.0.0.1/jqm'"


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
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except NoSuchModuleError:
        raise ConfigError(
            f"jqm_database_url {redact(url)!r}: SQLAlchemy has no dialect '{parsed.drivername}'; {_EXAMPLES}"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"jqm_database_url {redact(url)!r} needs the driver module '{exc.name}', which is not installed; "
            "for PostgreSQL: pip install 'jqm-celery[postgres]'"
        ) from None


def _sqlite_engine(url: URL, timeout_s: float) -> Engine:
    engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so every transaction can BEGIN IMMEDIATE: writers
        # then queue on SQLite's lock instead of failing with "database is locked" on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
