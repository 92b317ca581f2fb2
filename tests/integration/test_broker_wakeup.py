"""The embedded broker wakes a consumer in another process when a message is published.

The consumer's polling intervals are an hour, so a message reaches it within the test's timeout only
through a wake-up; where a wake-up cannot reach it, a short interval shows that polling still delivers.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from jqm_celery.broker import TRANSPORT
from tests.processes import Process, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOUR_S = 3600.0
QUEUE = "wakeup-test"


@pytest.fixture
def broker(tmp_path: Path) -> Path:
    return tmp_path / "broker.sqlite"


def consumer(broker: Path, tmp_path: Path, count: int, poll_s: float) -> Process:
    command = [
        sys.executable,
        "-m",
        "tests.integration.wakeup_consumer",
        f"sqlite:///{broker}",
        QUEUE,
        str(count),
        str(poll_s),
    ]
    return Process(command, tmp_path / "consumer.log", cwd=ROOT)


def sockets(broker: Path) -> list[Path]:
    folder = Path(f"{broker}-wake")
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def publish(broker: Path) -> Iterator[object]:
    with Connection(f"sqlite:///{broker}", transport=TRANSPORT) as connection:
        queue = connection.SimpleQueue(QUEUE)
        yield queue.put


def test_a_waiting_consumer_is_woken_by_each_publish(broker: Path, tmp_path: Path, publish: object) -> None:
    with consumer(broker, tmp_path, 3, HOUR_S) as process:
        wait_until(lambda: sockets(broker), 60, "the consumer never bound its wake-up socket", process)
        for number in range(3):
            publish(f"message {number}")  # type: ignore[operator]
            process.wait_for(f"got message {number}", timeout=60)


def test_a_consumer_that_no_wakeup_reaches_gets_the_message_by_polling(
    broker: Path, tmp_path: Path, publish: object
) -> None:
    with consumer(broker, tmp_path, 1, 0.05) as process:
        (own,) = wait_until(lambda: sockets(broker), 60, "the consumer never bound its socket", process)  # type: ignore[misc]
        own.unlink()  # as a cleaner of temporary files might: the publisher finds no socket to wake
        publish("polled")  # type: ignore[operator]
        process.wait_for("got polled", timeout=60)


def test_publishing_goes_on_past_a_dead_consumers_socket_and_removes_it(
    broker: Path, tmp_path: Path, publish: object
) -> None:
    folder = Path(f"{broker}-wake")
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / "1-deadbeef"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # its file stays, as when a consumer's process is killed
    (folder / "not-a-socket").write_text("")
    with consumer(broker, tmp_path, 1, HOUR_S) as process:
        wait_until(lambda: len(sockets(broker)) == 3, 60, "the consumer never bound its socket", process)
        publish("past the dead one")  # type: ignore[operator]
        process.wait_for("got past the dead one", timeout=60)
    assert not stale.exists()
    assert (folder / "not-a-socket").exists()


def test_a_consumer_that_cannot_bind_a_socket_polls(broker: Path, tmp_path: Path, publish: object) -> None:
    Path(f"{broker}-wake").write_text("a file where the wake-up folder would be")
    with consumer(broker, tmp_path, 1, 0.05) as process:
        publish("no socket")  # type: ignore[operator]
        process.wait_for("got no socket", timeout=60)
