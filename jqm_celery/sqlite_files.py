"""How every SQLite file of jqm's is opened and written: the embedded store, broker and results."""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for the annotation: a worker on PostgreSQL never loads SQLite's module.
    import sqlite3


def write_ahead(connection: sqlite3.Connection) -> None:
    """A write-ahead log with ``synchronous=NORMAL``: a commit waits for no disk flush, a crashed process
    loses nothing, and a power cut may lose the last commits."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


class WriteLock:
    """The writers of one SQLite file, in every process and thread, wait for each other on an ``flock`` of
    a file beside it (``<file>-writers``) before they take SQLite's own write lock.

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps 1, 2, 5, 10, 15…
    ms before it looks again: on a busy file the lock passes from writer to writer late. A writer waiting
    on the ``flock`` is woken by the kernel as soon as the one before it lets go. SQLite's lock still guards
    the file: a writer that does not come through here (a migration, another program) waits for it in
    SQLite's way, as before. A process that dies lets go with its file descriptors. Where the file beside
    it cannot be created (a read-only folder), writers rely on SQLite's lock alone.
    """

    def __init__(self, database: str) -> None:
        self.path = f"{database}-writers"
        self._local = threading.local()

    @staticmethod
    def of(database: str) -> WriteLock:
        """The lock of the file ``database`` for every store and broker of this process: a transaction
        opened inside another one's on the same thread finds the lock held, not a second hold to wait for."""
        return _lock_of(os.path.abspath(database))

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block; a block inside another on the same thread holds it already."""
        hold = self._hold()
        if hold is None:
            yield
            return
        if not hold.depth:
            fcntl.flock(hold.fd, fcntl.LOCK_EX)
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
            if not hold.depth:
                fcntl.flock(hold.fd, fcntl.LOCK_UN)

    def _hold(self) -> _Hold | None:
        # A descriptor of its own for each thread of each process: an flock excludes other descriptors
        # only, and one inherited across a fork is shared with the parent.
        hold: _Hold | None = getattr(self._local, "hold", None)
        if getattr(self._local, "pid", None) != os.getpid():
            try:
                hold = _Hold(self.path)
            except OSError:
                hold = None
            self._local.hold, self._local.pid = hold, os.getpid()
        return hold


@functools.cache
def _lock_of(path: str) -> WriteLock:
    return WriteLock(path)


class _Hold:
    """One thread's descriptor of a ``WriteLock``'s file, closed when the thread's locals go."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.depth = 0
        weakref.finalize(self, _close, self.fd, os.getpid())


def _close(fd: int, pid: int) -> None:
    # Not in a forked child: the number may have been closed there and given to another file since.
    if os.getpid() == pid:
        os.close(fd)
