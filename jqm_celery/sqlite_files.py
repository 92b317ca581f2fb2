"""How every SQLite file of jqm's is opened: the embedded store, broker and results."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for the annotation: a worker on PostgreSQL never loads SQLite's module.
    import sqlite3


def write_ahead(connection: sqlite3.Connection) -> None:
    """A write-ahead log with ``synchronous=NORMAL``: a commit waits for no disk flush, a crashed process
    loses nothing, and a power cut may lose the last commits."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
