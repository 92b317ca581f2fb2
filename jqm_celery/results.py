"""Celery's database result backend, with each chord joined by the last task of its group.

Celery's own database backend (``db+…``) cannot count a chord's finished tasks, so it joins a chord by
polling: a ``celery.chord_unlock`` message first looks a second after the chord was sent, then every
``result_chord_retry_interval``. Every group of a package would wait up to a second for nothing. This
backend (``jqm+…``: ``jqm+sqlite:///results.sqlite``, ``jqm+postgresql://…``) keeps Celery's tables and
everything else, and counts: each task of the group, once its result is stored, records itself as a
part of its chord in the same database; the one that completes the count joins the group and sends the
chord's body, or calls its error callbacks if a task of the group failed — what ``chord_unlock`` does,
without the wait. A task delivered again (at-least-once) is counted once.

Registered with Celery under the name ``jqm`` (the entry point ``celery.result_backends``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery.backends.database import DatabaseBackend, session_cleanup
from celery.backends.database.session import ResultModelBase, SessionManager
from celery.canvas import maybe_signature
from celery.exceptions import ChordError
from celery.result import allow_join_result, result_from_tuple
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    delete,
    event,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from jqm_celery.sqlite_files import write_ahead

logger = logging.getLogger("jqm_celery.results")

# Celery's own tables' metadata: Celery creates these with them, on first use, as it does its own (and
# retries a creation that races another process's). Once this module is imported, Celery's ``db+``
# backend in the same process creates them too; it does not use them.
_metadata = ResultModelBase.metadata
#: One row per chord sent and not yet joined: its group's results (``GroupResult.as_tuple``, as JSON), how
#: many of its tasks must end (Celery's chord size, which counts the tasks of a nested group or the last
#: of a chain; set as the group is sent) and how many have.
chords = Table(
    "jqm_chord",
    _metadata,
    Column("group_id", String(155), primary_key=True),
    Column("header", Text, nullable=False),
    Column("size", Integer, nullable=True),
    Column("ended", Integer, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
#: The tasks of a chord's group that have ended, so that a task delivered again is counted once.
chord_parts = Table(
    "jqm_chord_part",
    _metadata,
    Column("group_id", String(155), primary_key=True),
    Column("task_id", String(155), primary_key=True),
)


class DatabaseResults(DatabaseBackend):  # type: ignore[misc]
    """Celery's ``DatabaseBackend``, whose chords are joined by their last task instead of polled.

    On SQLite, its connections use a write-ahead log (``sqlite_files.write_ahead``), as the embedded store
    and broker do: a commit waits for no disk flush (Celery's default journal waits for two); a power
    cut may lose the last results, never the store's record.
    """

    session_manager: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        theirs = self.session_manager.engine_callback

        def prepare(engine: Engine) -> None:
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", lambda connection, _record: write_ahead(connection))
            if theirs is not None:
                theirs(engine)

        self.session_manager = _Sessions(engine_callback=prepare)

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Open the chord's count, before any task of its group is sent (Celery sends them after this).

        A chord sent again under the same group id (a frozen chord applied anew) starts a new count.
        """
        self.ensure_chords_allowed()
        header = self.app.GroupResult(*header_result_args)
        row = {
            "header": json.dumps(header.as_tuple()),
            "size": None,
            "ended": 0,
            "sent_at": datetime.now(UTC),
        }
        session = self.ResultSession()
        with session_cleanup(session):
            _forget(session, header.id)
            try:
                session.execute(insert(chords).values(group_id=header.id, **row))
                session.commit()
            except IntegrityError:
                # Sent again by another process at the same time: its count is reset all the same.
                session.rollback()
                session.execute(delete(chord_parts).where(chord_parts.c.group_id == header.id))
                session.execute(update(chords).where(chords.c.group_id == header.id).values(row))
                session.commit()

    def set_chord_size(self, group_id: str, chord_size: int) -> None:
        """How many tasks of the group must end: Celery tells it before it sends the group's last task."""
        session = self.ResultSession()
        with session_cleanup(session):
            session.execute(update(chords).where(chords.c.group_id == group_id).values(size=chord_size))
            session.commit()

    def on_chord_part_return(self, request: Any, state: str, result: Any, **kwargs: Any) -> None:
        """Count this task of its chord's group; the one that ends the count joins the group and sends
        the chord's body (or calls its error callbacks)."""
        group_id = request.group
        if not group_id or not request.chord:
            return
        counted = self._count_part(group_id, request.id)
        if counted is None:
            return
        ended, size, header = counted
        if size is None or ended < size:
            # Not the last; or the group's size is not known yet, and its last task is not sent yet.
            return
        if ended > size:
            logger.warning("jqm: chord %s: %d tasks ended, its group has %d", group_id, ended, size)
            return
        deps = result_from_tuple(json.loads(header), app=self.app)
        callback = maybe_signature(request.chord, app=self.app)
        try:
            with allow_join_result():
                joined = deps.join(timeout=self.app.conf.result_chord_join_timeout, propagate=True)
        except Exception as exc:
            culprit = next(deps._failed_join_report(), None)
            reason = repr(exc) if culprit is None else f"Dependency {culprit.id} raised {exc!r}"
            self.chord_error_from_stack(callback, ChordError(reason))
        else:
            try:
                callback.delay(joined)
            except Exception as exc:
                logger.exception("jqm: chord %s: its body could not be sent", group_id)
                self.chord_error_from_stack(callback, ChordError(f"Callback error: {exc!r}"))
        finally:
            session = self.ResultSession()
            with session_cleanup(session):
                _forget(session, group_id)
                session.commit()

    def _count_part(self, group_id: str, task_id: str) -> tuple[int, int | None, str] | None:
        """Record the task as ended in its chord: how many have, how many must, and the chord's header.
        None if it was counted already, or if its chord was sent before this backend counted chords
        (Celery's ``chord_unlock`` joins that one)."""
        session = self.ResultSession()
        with session_cleanup(session):
            conn: Connection = session.connection()
            # The count's row is locked first (PostgreSQL); SQLite takes its one write lock here.
            counted = conn.execute(
                update(chords)
                .where(chords.c.group_id == group_id)
                .values(ended=chords.c.ended + 1)
                .returning(chords.c.ended, chords.c.size, chords.c.header)
            ).first()
            seen = exists().where(chord_parts.c.group_id == group_id, chord_parts.c.task_id == task_id)
            if counted is None or conn.scalar(select(seen)):
                session.rollback()
                return None
            conn.execute(insert(chord_parts).values(group_id=group_id, task_id=task_id))
            session.commit()
            return int(counted.ended), counted.size, str(counted.header)

    def _cleanup(self) -> None:
        """Celery's clean-up of expired results, and of chords sent before then and never joined."""
        super()._cleanup()
        cutoff = datetime.now(UTC) - self.expires
        session = self.ResultSession()
        with session_cleanup(session):
            stale = select(chords.c.group_id).where(chords.c.sent_at < cutoff)
            session.execute(delete(chord_parts).where(chord_parts.c.group_id.in_(stale)))
            session.execute(delete(chords).where(chords.c.sent_at < cutoff))
            session.commit()


class _Sessions(SessionManager):  # type: ignore[misc]
    """Celery's session manager, which keeps one engine per database in a process that has not forked.

    Celery's builds a new engine for every session there (a client sending a chord, a worker's main
    process, a pool of threads), with no pool so that no connection crosses a later fork: 6.1 ms a
    result on SQLite, against 3.6 ms with the engine kept. The engine kept here has no pool either, so
    a fork still inherits no connection (each session opens its own); a forked child uses Celery's own
    (pooled) engines.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[str, Engine] = {}

    def get_engine(self, dburi: str, **kwargs: Any) -> Engine:
        if self.forked:
            return super().get_engine(dburi, **kwargs)  # type: ignore[no-any-return]
        engine = self._kept.get(dburi)
        if engine is None:
            engine = self._kept[dburi] = super().get_engine(dburi, **kwargs)
        return engine

    def invalidate(self, dburi: str) -> None:
        super().invalidate(dburi)
        engine = self._kept.pop(dburi, None)
        if engine is not None:
            engine.dispose()


def _forget(session: Any, group_id: str) -> None:
    session.execute(delete(chord_parts).where(chord_parts.c.group_id == group_id))
    session.execute(delete(chords).where(chords.c.group_id == group_id))
