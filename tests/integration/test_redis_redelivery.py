"""On Redis, how soon a lost worker's unacknowledged message is back in its queue.

Kombu's Redis transport puts such a message back once it is older than ``visibility_timeout``, but only
when a live worker's restore sweep runs: every ``unacked_restore_interval`` (10 s) it calls the sweep,
which scans Redis on every ``unacked_restore_throttle``-th call (10): about every 100 s. jqm sets the
throttle to 1 on the apps it configures, so the message is back within the visibility timeout plus 10 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT
from tests.integration.testapp import make_app
from tests.services import REDIS_REDELIVERY_DB, redis_url, require

VISIBILITY_TIMEOUT_S = 5


@pytest.fixture
def conf() -> Iterator[dict[str, Any]]:
    require("redis")
    import redis

    url = redis_url(REDIS_REDELIVERY_DB)
    redis.Redis.from_url(url).flushdb()
    yield {
        "broker_url": url,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "task_acks_late": True,
        "task_default_queue": f"jqm-redelivery-{uuid.uuid4().hex[:8]}",
        "jqm_database_url": "sqlite:///:memory:",
    }
    redis.Redis.from_url(url).flushdb()


def _worker(conf: dict[str, Any], queue: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.worker",
                json.dumps(conf),
                "-Q",
                queue,
                "-c",
                "1",
                "--prefetch-multiplier=1",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(what: str, check: Any, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_a_lost_workers_message_is_back_within_the_visibility_timeout_plus_10_s(
    conf: dict[str, Any], tmp_path: Path
) -> None:
    import redis

    client = redis.Redis.from_url(conf["broker_url"])
    queue = conf["task_default_queue"]
    # A worker that has been up for a while (past its first restore sweep), on another queue: it only
    # sweeps. The lost worker takes the message and dies without acknowledging it.
    sweeper_log, lost_log = tmp_path / "sweeper.log", tmp_path / "lost.log"
    sweeper = _worker(conf, f"{queue}-other", sweeper_log)
    lost = _worker(conf, queue, lost_log)
    try:
        for log in (sweeper_log, lost_log):
            _wait("a worker did not start", lambda log=log: " ready." in log.read_text(), 60, log)
        time.sleep(11)  # the sweeper's first sweep (10 s after it started) is behind it
        make_app(conf).send_task("tests.sleep", args=[120.0], queue=queue)
        _wait(
            "the worker never took the message",
            lambda: "Task tests.sleep[" in lost_log.read_text(),
            30,
            lost_log,
        )
        os.killpg(lost.pid, signal.SIGKILL)
        lost.wait(10)
        killed = time.monotonic()
        _wait("the message never came back", lambda: client.llen(queue) == 1, 150, sweeper_log)
        back_after_s = time.monotonic() - killed
    finally:
        for process in (sweeper, lost):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    print(f"redelivered {back_after_s:.1f} s after the worker was lost")
    assert back_after_s <= VISIBILITY_TIMEOUT_S + 10 + 3
