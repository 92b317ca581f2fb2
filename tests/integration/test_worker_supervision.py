"""``jqm worker`` as a real process on a Redis of the test's own: it keeps its workers up."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jqm_celery import JobQueueManager, JobStatus
from tests.integration.testapp import make_app
from tests.multihost.servers import RedisServer
from tests.processes import Process, wait_until
from tests.services import postgres_database

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"worker (\S+): started \(pid (\d+)\)")


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def conf(broker: RedisServer) -> Iterator[dict[str, Any]]:
    with postgres_database() as database_url:
        yield {
            "broker_url": f"{broker.url}/0",
            "jqm_database_url": database_url,
            "jqm_auto_migrate": True,
            "task_default_queue": f"jqm-sup-{uuid.uuid4().hex[:8]}",
        }


@pytest.fixture
def jqm(conf: dict[str, Any]) -> JobQueueManager:
    return JobQueueManager.of(make_app(conf))


@pytest.fixture
def supervisor(conf: dict[str, Any], tmp_path: Path) -> Iterator[Process]:
    env = {**os.environ, "JQM_TEST_CONF": json.dumps(conf)}
    command = [sys.executable, "-m", "jqm_celery.cli", "--app", "tests.integration.cliapp:app", "worker"]
    command += ["--restart-delay", "0.5", "--healthy-after", "5", "--default-pool-size", "1"]
    process = Process(command, tmp_path / "jqm-worker.log", cwd=ROOT, env=env)
    process.wait_for(" ready.", timeout=120)
    yield process
    process.stop()
    _assert_gone(_worker_pids(process))


def _worker_pids(process: Process) -> list[int]:
    return [int(pid) for _name, pid in STARTED.findall(process.log())]


def _assert_gone(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _finishes(jqm: JobQueueManager) -> None:
    job = jqm.enqueue("tests.noop")
    wait_until(lambda: jqm.job(job.id).status is JobStatus.DONE, 120, f"job {job.id} never finished")


def test_a_killed_worker_is_started_again_and_runs_jobs(supervisor: Process, jqm: JobQueueManager) -> None:
    [first] = _worker_pids(supervisor)
    os.kill(first, signal.SIGKILL)
    supervisor.wait_for("was killed by signal SIGKILL")
    wait_until(lambda: len(_worker_pids(supervisor)) == 2, 30, "the worker was not started again", supervisor)
    wait_until(
        lambda: supervisor.log().count(" ready.") == 2, 120, "the new worker never got ready", supervisor
    )
    _finishes(jqm)


def test_a_worker_it_starts_holds_neither_rich_nor_the_other_commands(
    supervisor: Process, jqm: JobQueueManager, tmp_path: Path
) -> None:
    # A job reports what its process has loaded: a pool process of a worker `jqm worker` started, which
    # holds what that worker's process (the CLI's) had loaded before it forked.
    path = tmp_path / "modules.json"
    job = jqm.enqueue("tests.modules", [str(path)])
    wait_until(lambda: jqm.job(job.id).status is JobStatus.DONE, 120, f"job {job.id} never finished")
    loaded = json.loads(path.read_text())
    commands = sorted(name for name in loaded if name.startswith("jqm_celery.cli."))
    assert commands == ["jqm_celery.cli.base", "jqm_celery.cli.database", "jqm_celery.cli.worker"]
    assert "rich" not in loaded


def test_the_worker_runs_jobs_after_the_broker_restarts_empty(
    supervisor: Process, jqm: JobQueueManager, broker: RedisServer
) -> None:
    broker.kill()
    supervisor.wait_for("Connection to broker lost")
    broker.start()
    _finishes(jqm)
    assert supervisor.process.poll() is None


def test_sigterm_stops_every_worker_and_the_supervisor(supervisor: Process) -> None:
    pids = _worker_pids(supervisor)
    supervisor.process.send_signal(signal.SIGTERM)
    assert supervisor.process.wait(60) == 0
    assert "SIGTERM received: stopping the workers" in supervisor.log()
    assert "restart" not in supervisor.log().split("SIGTERM received", 1)[1]
    _assert_gone(pids)
