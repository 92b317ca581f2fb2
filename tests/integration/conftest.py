"""Real workers, brokers and databases: the embedded default, Redis + PostgreSQL, RabbitMQ + PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from jqm_celery import JobQueueManager
from jqm_celery.embedded import embedded_conf
from tests.integration.mailserver import MailServer
from tests.integration.testapp import make_app
from tests.services import (
    RABBITMQ_URL,
    REDIS_BROKER_DB,
    REDIS_RESULTS_DB,
    postgres_database,
    redis_url,
    require,
)

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["embedded", "redis-pg", "rabbitmq-pg"]


@dataclass
class Backend:
    name: str
    conf: dict[str, Any]
    tmp: Path

    _app: Celery | None = None

    def app(self) -> Celery:
        """The test process's app for this backend (made once: tasks register once)."""
        if self._app is None:
            self._app = make_app(self.conf)
        return self._app

    @property
    def queue(self) -> str:
        return str(self.conf["task_default_queue"])


@dataclass
class Worker:
    """A real Celery worker in a child process, with its log in a file."""

    backend: Backend
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 60.0) -> Worker:
        name = f"w{uuid.uuid4().hex[:6]}@%h"
        self.log_path = self.backend.tmp / f"worker-{uuid.uuid4().hex[:6]}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.worker",
                json.dumps(self.backend.conf),
                "--loglevel=INFO",
                "-n",
                name,
                "--without-mingle",
                "--without-gossip",
                *self.args,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _conf(name: str, tmp: Path, stack: ExitStack) -> dict[str, Any]:
    queue = f"jqm-test-{uuid.uuid4().hex[:10]}"
    common: dict[str, Any] = {"task_default_queue": queue, "jqm_auto_migrate": True}
    if name == "embedded":
        return {**embedded_conf(tmp / "embedded"), **common}
    if name == "redis-pg":
        require("redis")
        url = stack.enter_context(postgres_database())
        return {
            **common,
            "broker_url": redis_url(REDIS_BROKER_DB),
            "broker_transport_options": _own_unacked_keys(queue),
            "result_backend": redis_url(REDIS_RESULTS_DB),
            "jqm_database_url": url,
        }
    if name == "rabbitmq-pg":
        require("rabbitmq")
        url = stack.enter_context(postgres_database())
        return {**common, "broker_url": RABBITMQ_URL, "jqm_database_url": url}
    raise ValueError(name)


def _own_unacked_keys(tag: str) -> dict[str, Any]:
    """Redis keeps its unacknowledged messages, and the lock of the sweep that puts a lost worker's back,
    under keys shared by every consumer of the database. A worker killed by a test in another process
    while it held that lock (for 30 s with jqm's expiry) would hold every other test's lost messages
    back. Each test process has keys of its own, and a lock held by a worker it killed itself expires
    after 5 s."""
    return {
        "unacked_key": f"unacked-{tag}",
        "unacked_index_key": f"unacked_index-{tag}",
        "unacked_mutex_key": f"unacked_mutex-{tag}",
        "unacked_mutex_expire": 5,
    }


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    tmp = tmp_path_factory.mktemp(request.param)
    with ExitStack() as stack:
        backend = Backend(request.param, _conf(request.param, tmp, stack), tmp)
        yield backend
        _delete_queues(backend)


def _delete_queues(backend: Backend) -> None:
    if backend.name == "embedded":
        return
    app = backend.app()
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in (backend.queue,):
            with suppress(Exception):
                channel.queue_delete(queue)


@pytest.fixture(scope="session")
def worker(backend: Backend) -> Iterator[Worker]:
    """One worker per backend for the whole session (prefork, 3 processes)."""
    running = Worker(backend, ["--pool=prefork", "--concurrency=3"]).start()
    yield running
    running.stop()


@pytest.fixture
def jqm(backend: Backend, worker: Worker) -> JobQueueManager:
    """The test process's manager, on the same app and store as the running worker."""
    return JobQueueManager.of(backend.app())


@pytest.fixture
def own_queue(jqm: JobQueueManager) -> str:
    name = f"ctl-{uuid.uuid4().hex[:8]}"
    jqm.define_queue(name, pool_size=1)
    return name


@pytest.fixture
def recovery_queue(jqm: JobQueueManager) -> str:
    """A queue of the test's own, of pool size 1 (for the recovery tests)."""
    name = f"recovery-{uuid.uuid4().hex[:8]}"
    jqm.define_queue(name, pool_size=1)
    return name


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """The workers a test starts with ``start_worker``, stopped at its end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(backend: Backend, queues: str, workers: list[Worker]) -> Worker:
    """A one-process worker of ``queues`` (comma-separated) that takes one message at a time."""
    worker = Worker(backend, ["--pool=prefork", "--concurrency=1", "--prefetch-multiplier=1", "-Q", queues])
    workers.append(worker.start())
    return worker


@pytest.fixture
def queue_workers(backend: Backend, own_queue: str) -> Iterator[list[Worker]]:
    """Two workers that consume ``own_queue``; the second one is started by the test, when it says."""
    started: list[Worker] = []
    first = Worker(backend, ["--pool=prefork", "--concurrency=1", "-Q", own_queue, "--prefetch-multiplier=1"])
    second = Worker(
        backend, ["--pool=prefork", "--concurrency=1", "-Q", own_queue, "--prefetch-multiplier=1"]
    )
    started.append(first.start())
    started.append(second)
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    """A real SMTP server on loopback for the module's tests."""
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    return tmp_path / "marks.jsonl"


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A package name unique to the test."""
    return f"{request.node.name[:60]}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")
