"""What every part of the store shares: the engine (one per process), transactions, the schema, listeners.

Every public method of the store is one transaction. The store knows nothing of Celery: the runtime hands
it plain values and gets plain values back.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from jqm_celery.errors import ConfigError
from jqm_celery.events import Event
from jqm_celery.store import migrate
from jqm_celery.store.engine import make_engine, redact
from jqm_celery.store.log import EVENTS
from jqm_celery.store.writers import WRITER, PortableWriter, writer_for

logger = logging.getLogger("jqm_celery")


class StoreBase:
    """The database a store runs on: its engine, its transactions, its schema, its listeners."""

    def __init__(self, url: str, *, auto_migrate: bool | None = None, retry_s: float = 60.0) -> None:
        self.url = url
        #: How long a job's claim or end retries a database outage (``jqm_store_retry_s``).
        self.retry_s = retry_s
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

    @functools.cached_property
    def writer(self) -> PortableWriter:
        """How this store writes on its database (see writers), chosen once."""
        return writer_for(self)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction (on SQLite: BEGIN IMMEDIATE, after the file's write lock); the schema is checked on
        first use."""
        self.ensure_schema_once()
        events: list[Event] = []
        info = {EVENTS: events, WRITER: self.writer}
        with (
            self.writer.write_lock(),
            Session(self.engine, expire_on_commit=False, info=info) as session,
            session.begin(),
        ):
            yield session
        if events and self.listeners:
            self._publish(events)

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement commits on its own (for single-statement writes)."""
        self.ensure_schema_once()
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:
                    # What was recorded stays recorded: a listener must never fail the caller.
                    logger.exception("jqm: a listener of %s events failed", event.kind)

    def ensure_schema_once(self) -> None:
        if not self._schema_ready:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        """Migrate an embedded SQLite store; check that any other store is at the current revision."""
        auto = self.writer.migrates_itself if self._auto_migrate is None else self._auto_migrate
        if auto:
            migrate.upgrade(self.engine)
        else:
            current, head = migrate.current_revision(self.engine), migrate.HEAD_REVISION
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
