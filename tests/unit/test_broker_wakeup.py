"""The embedded broker's wake-up sockets, in one process: no waits that could run out, no clock."""

from __future__ import annotations

import socket
from pathlib import Path

from jqm_celery.broker_wakeup import Wakeup

HOUR_S = 3600.0


def test_a_notify_ends_a_listeners_wait(tmp_path: Path) -> None:
    consumer, publisher = Wakeup(tmp_path / "broker.sqlite"), Wakeup(tmp_path / "broker.sqlite")
    assert consumer.listen()
    publisher.notify()
    consumer.wait(HOUR_S)  # returns at once: the wake-up is waiting in its socket
    consumer.close()
    publisher.close()


def test_many_notifies_are_read_by_one_wait(tmp_path: Path) -> None:
    consumer, publisher = Wakeup(tmp_path / "broker.sqlite"), Wakeup(tmp_path / "broker.sqlite")
    consumer.listen()
    for _ in range(50):  # more than a datagram socket queues: the rest are dropped, none is needed
        publisher.notify()
    consumer.wait(HOUR_S)
    consumer.wait(0)  # nothing left to read
    consumer.close()
    publisher.close()


def test_notify_self_ends_the_own_wait(tmp_path: Path) -> None:
    consumer = Wakeup(tmp_path / "broker.sqlite")
    consumer.listen()
    consumer.notify_self()
    consumer.wait(HOUR_S)
    consumer.close()


def test_close_removes_the_socket_file(tmp_path: Path) -> None:
    consumer = Wakeup(tmp_path / "broker.sqlite")
    consumer.listen()
    assert len(list(consumer.folder.iterdir())) == 1
    consumer.close()
    assert list(consumer.folder.iterdir()) == []


def test_a_folder_that_cannot_be_made_means_polling(tmp_path: Path) -> None:
    Path(f"{tmp_path / 'broker.sqlite'}-wake").write_text("")
    consumer = Wakeup(tmp_path / "broker.sqlite")
    assert not consumer.listen()
    assert not consumer.listening
    Wakeup(tmp_path / "broker.sqlite").notify()  # no folder to list: nothing to do, no error


def test_a_long_folder_path_still_gets_a_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    consumer, publisher = Wakeup(deep / "broker.sqlite"), Wakeup(deep / "broker.sqlite")
    assert consumer.listen()
    publisher.notify()
    consumer.wait(HOUR_S)
    consumer.close()
    publisher.close()


def test_a_dead_listeners_socket_is_removed_and_other_files_are_left(tmp_path: Path) -> None:
    publisher = Wakeup(tmp_path / "broker.sqlite")
    publisher.folder.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(publisher.folder / "1-dead"))
    dead.close()
    (publisher.folder / "notes.txt").write_text("")
    publisher.notify()
    assert sorted(p.name for p in publisher.folder.iterdir()) == ["notes.txt"]
    publisher.close()
