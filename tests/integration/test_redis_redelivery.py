"""On Redis, how soon a lost worker's unacknowledged message is back in its queue.

Kombu's Redis transport puts such a message back once it is older than ``visibility_timeout``, but only
when a live worker's restore sweep runs: every ``unacked_restore_interval`` (10 s) it calls the sweep,
which scans Redis on every ``unacked_restore_throttle``-th call (10): about every 100 s. jqm sets the
throttle to 1 on the apps it configures, so the message is back within the visibility timeout plus 10 s.

A sweep holds a lock that every worker of the database shares; Kombu lets it expire after 300 s, so a
worker killed during its sweep would stop everyone's sweeps for five minutes. jqm sets that expiry to 30 s.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT
from tests.integration.testapp import make_app
from tests.processes import Process, wait_until
from tests.services import REDIS_REDELIVERY_DB, redis_url, require

VISIBILITY_TIMEOUT_S = 5

#: A process that takes the restore sweep's lock as a worker's sweep does (Kombu's own ``Mutex``, with the
#: key and expiry of the app's configured transport), says so, and waits to be killed.
_HOLD_THE_SWEEPS_LOCK = """
import json, sys, time
from kombu.transport.redis import Mutex
from tests.integration.testapp import make_app

app = make_app(json.loads(sys.argv[1]))
with app.connection_for_write() as conn:
    channel = conn.default_channel
    with Mutex(channel.client, channel.unacked_mutex_key, channel.unacked_mutex_expire):
        print(f"holding {channel.unacked_mutex_key} for {channel.unacked_mutex_expire} s", flush=True)
        time.sleep(3600)
"""


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


def _worker(conf: dict[str, Any], queue: str, log_path: Path) -> Process:
    command = [sys.executable, "-m", "tests.integration.worker", json.dumps(conf), "-Q", queue, "-c", "1"]
    options = ["--prefetch-multiplier=1", "--without-mingle", "--without-gossip", "--loglevel=INFO"]
    return Process([*command, *options], log_path, cwd=ROOT)


def test_a_lost_workers_message_is_back_within_the_visibility_timeout_plus_10_s(
    conf: dict[str, Any], tmp_path: Path
) -> None:
    import redis

    client = redis.Redis.from_url(conf["broker_url"])
    queue = conf["task_default_queue"]
    # A worker that has been up for a while (past its first restore sweep), on another queue: it only
    # sweeps. The lost worker takes the message and dies without acknowledging it.
    with _worker(conf, f"{queue}-other", tmp_path / "sweeper.log") as sweeper:
        with _worker(conf, queue, tmp_path / "lost.log") as lost:
            sweeper.wait_for(" ready.")
            lost.wait_for(" ready.")
            time.sleep(11)  # the sweeper's first sweep (10 s after it started) is behind it
            make_app(conf).send_task("tests.sleep", args=[120.0], queue=queue)
            lost.wait_for("Task tests.sleep[", timeout=30)
            lost.kill()
        killed = time.monotonic()
        wait_until(lambda: client.llen(queue) == 1, 150, "the message never came back", sweeper)
        back_after_s = time.monotonic() - killed
    print(f"redelivered {back_after_s:.1f} s after the worker was lost")
    assert back_after_s <= VISIBILITY_TIMEOUT_S + 10 + 3


def test_a_worker_killed_during_its_sweep_holds_the_other_sweeps_back_for_30_s_at_most(
    conf: dict[str, Any], tmp_path: Path
) -> None:
    import redis

    client = redis.Redis.from_url(conf["broker_url"])
    queue = conf["task_default_queue"]
    app = make_app(conf)
    expire_s = app.conf.broker_transport_options["unacked_mutex_expire"]
    assert expire_s == 30  # jqm's default: the app's conf sets no expiry of its own
    with _worker(conf, f"{queue}-other", tmp_path / "sweeper.log") as sweeper:
        with _worker(conf, queue, tmp_path / "lost.log") as lost:
            sweeper.wait_for(" ready.")
            lost.wait_for(" ready.")
            holder = [sys.executable, "-c", _HOLD_THE_SWEEPS_LOCK, json.dumps(conf)]
            with Process(holder, tmp_path / "holder.log", cwd=ROOT) as killed_while_sweeping:
                killed_while_sweeping.wait_for("holding unacked_mutex for 30 s")
                held = time.monotonic()
                killed_while_sweeping.kill()
            assert 0 < client.pttl("unacked_mutex") <= expire_s * 1000  # left behind, expiring
            app.send_task("tests.sleep", args=[120.0], queue=queue)
            lost.wait_for("Task tests.sleep[", timeout=30)
            lost.kill()
        bound_s = expire_s + 10 + 3
        wait_until(lambda: client.llen(queue) == 1, bound_s + 30, "the message never came back", sweeper)
        back_after_s = time.monotonic() - held
    print(f"redelivered {back_after_s:.1f} s after the lock was left behind")
    # The sweeps waited for the lock (the message was old enough after 5 s), and no longer than it lasted.
    assert expire_s - 2 <= back_after_s <= bound_s
