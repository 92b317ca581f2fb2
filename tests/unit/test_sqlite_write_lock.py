"""The writers of one SQLite file wait for each other on ``sqlite_files.WriteLock``: across processes,
threads and forks, never on themselves, and never on a process that has died.

A writer that waits is seen waiting in the kernel's table of locks (``/proc/locks``, a "->" line for its
pid on the lock's file) before the holder lets go: the tests wait for that, not for time to pass.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kombu import Connection
from kombu.simple import SimpleQueue
from sqlalchemy import select

from jqm_celery import Entry, Package
from jqm_celery.embedded import embedded_conf
from jqm_celery.sqlite_files import WriteLock
from jqm_celery.store import Store
from jqm_celery.store.models import PackageRow
from tests.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

_TAKE_AND_SAY = """
import sys
from jqm_celery.sqlite_files import WriteLock

print("waiting", flush=True)
with WriteLock(sys.argv[1]).held():
    print("holding", flush=True)
    sys.stdin.readline()
"""


def _waiting(lock: WriteLock, pid: int) -> bool:
    """Whether ``pid`` waits for ``lock`` in the kernel's table of locks."""
    inode = os.stat(lock.path).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        waiter = len(fields) > 6 and fields[1] == "->" and fields[2] == "FLOCK" and int(fields[5]) == pid
        if waiter and int(fields[6].rsplit(":", 1)[1]) == inode:
            return True
    return False


def _free(lock: WriteLock) -> bool:
    """Whether another descriptor could take the lock now (it lets go at once if it could)."""
    fd = os.open(lock.path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@contextmanager
def _other_process(lock_database: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _TAKE_AND_SAY, lock_database],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait(10)


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite")


def test_a_writer_in_another_process_waits_until_the_holder_lets_go(database: str) -> None:
    lock = WriteLock(database)
    with _other_process(database) as other:
        with lock.held():
            assert _line(other) == "waiting"
            wait_until(lambda: _waiting(lock, other.pid), 30, "the other process never waited for the lock")
        # Seen waiting while this process held the lock: it says "holding" only once this one let go.
        assert _line(other) == "holding"
        assert not _free(lock)


def test_a_process_killed_while_holding_lets_go(database: str) -> None:
    lock = WriteLock(database)
    with _other_process(database) as other:
        assert _line(other) == "waiting"
        assert _line(other) == "holding"
        assert not _free(lock)
        other.kill()
        other.wait(10)
    assert _free(lock)
    with lock.held():
        assert not _free(lock)


def test_threads_of_one_process_wait_for_each_other(database: str) -> None:
    lock = WriteLock(database)
    order: list[str] = []
    started = threading.Event()

    def second() -> None:
        started.set()
        with lock.held():
            order.append("second")

    with lock.held():
        thread = threading.Thread(target=second)
        thread.start()
        started.wait(10)
        wait_until(lambda: _waiting(lock, os.getpid()), 30, "the second thread never waited for the lock")
        order.append("first")
    thread.join(30)
    assert order == ["first", "second"]


def test_a_block_inside_another_on_the_same_thread_holds_it_until_the_outer_one_ends(database: str) -> None:
    lock = WriteLock(database)
    with lock.held():
        with lock.held():
            assert not _free(lock)
        assert not _free(lock)
    assert _free(lock)


def test_a_forked_child_does_not_share_its_parents_hold(database: str) -> None:
    lock = WriteLock(database)
    with lock.held():
        pass  # this thread has its descriptor now; the child inherits it
    context = multiprocessing.get_context("fork")
    got, sent = context.Pipe(duplex=False)

    def child() -> None:
        with lock.held():
            sent.send("holding")

    with lock.held():
        process = context.Process(target=child)
        process.start()
        assert process.pid is not None
        wait_until(lambda: _waiting(lock, process.pid or 0), 30, "the child never waited for the lock")
        assert not got.poll()
    assert got.recv() == "holding"
    process.join(30)
    assert process.exitcode == 0


def test_where_the_file_beside_it_cannot_be_made_writers_rely_on_sqlites_lock(tmp_path: Path) -> None:
    lock = WriteLock(str(tmp_path / "no-such-folder" / "store.sqlite"))
    with lock.held(), lock.held():
        pass
    assert not Path(lock.path).exists()


def _started(write: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _names(store: Store) -> list[str]:
    with store.autocommit() as conn:  # a read: no transaction, no lock
        return sorted(conn.scalars(select(PackageRow.name)))


def test_the_embedded_store_writes_after_the_files_write_lock(tmp_path: Path) -> None:
    database = tmp_path / "jqm.sqlite"
    store = Store(f"sqlite:///{database}", auto_migrate=True)
    store.save_package(Package("first", entries=[Entry("t.a")]), NOW)  # migrated, lock file made
    lock = WriteLock(str(database))
    try:
        second = Package("second", entries=[Entry("t.a")])
        with lock.held():
            write = _started(lambda: store.save_package(second, NOW))
            wait_until(lambda: _waiting(lock, os.getpid()), 30, "the store's write never waited")
            assert _names(store) == ["first"]  # seen waiting, and a read waits for no one
        write.join(30)
        assert _names(store) == ["first", "second"]
    finally:
        store.dispose()


def test_the_embedded_broker_publishes_after_the_files_write_lock(tmp_path: Path) -> None:
    conf = embedded_conf(tmp_path / "data")
    path = conf["broker_url"].removeprefix("sqlite:///")
    with Connection(conf["broker_url"], transport=conf["broker_transport"]) as connection:
        queue = SimpleQueue(connection, "jqm-write-lock")
        queue.put({"n": 1})  # the file and its lock file exist
        lock = WriteLock(path)
        with lock.held():
            publish = _started(lambda: queue.put({"n": 2}))
            wait_until(lambda: _waiting(lock, os.getpid()), 30, "the broker's publish never waited")
            assert queue.qsize() == 1
        publish.join(30)
        assert [queue.get(timeout=5).payload for _ in range(2)] == [{"n": 1}, {"n": 2}]
        queue.close()


def test_the_stores_and_brokers_of_one_process_share_a_files_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert WriteLock.of("store.sqlite") is WriteLock.of(str(tmp_path / "store.sqlite"))
    assert WriteLock.of("store.sqlite").path == str(tmp_path / "store.sqlite-writers")
    with WriteLock.of("store.sqlite").held(), WriteLock.of(str(tmp_path / "store.sqlite")).held():
        pass  # one hold, taken once: a transaction inside another on this thread does not wait for itself
