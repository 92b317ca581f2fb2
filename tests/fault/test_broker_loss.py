"""The broker lost mid-run, killed and restarted empty or paused: on the test's own Redis and on the
test's own RabbitMQ node, with PostgreSQL.

Each scenario runs a package of several jobs (a group among them) on the broker, breaks the broker while
the run is in flight, and checks that the run ends with every job in a final state, that every task body
that ran has its attempt in the log, and that no job ran more often than the rule allows: once, plus once
per attempt logged INTERRUPTED (its worker was lost while it ran). It prints the time from the broker's
return to the run's end. A worker that exits when the broker drops is replaced by a fresh one. RabbitMQ
"restarted empty" is its node killed and its database deleted; its results go to the shared Redis.

``JQM_FAULT_SOAK=1`` makes the run longer and the outage longer (a minute or so per scenario).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import pytest

from jqm_celery import Entry, JobQueueManager, JobStatus, Package, RunStatus
from jqm_celery.records import Run
from jqm_celery.statuses import AttemptStatus, LogKind
from tests.fault.rabbitmq_server import RabbitMQServer
from tests.fault.redis_server import RedisServer
from tests.integration.conftest import Backend, Worker
from tests.integration.testapp import read_marks
from tests.processes import wait_until
from tests.services import REDIS_RESULTS_DB, postgres_database, redis_url, require

pytestmark = [pytest.mark.fault, pytest.mark.integration]

SOAK = os.environ.get("JQM_FAULT_SOAK") == "1"
#: Run orders of the package, and jobs per run order (the second is a group).
STAGES = 12 if SOAK else 4
PARALLEL = 3
JOB_S = 1.0 if SOAK else 0.4
OUTAGE_S = 20.0 if SOAK else 2.0
RUN_TIMEOUT_S = 300.0 if SOAK else 90.0


class Broker(Protocol):
    """The test's own broker server: ``RedisServer`` or ``RabbitMQServer``."""

    def start(self) -> object: ...
    def kill(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer | RabbitMQServer]:
    server = RedisServer(tmp_path) if request.param == "redis" else RabbitMQServer(tmp_path)
    with server:
        yield server


@pytest.fixture
def backend(broker: RedisServer | RabbitMQServer, tmp_path: Path) -> Iterator[Backend]:
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        if isinstance(broker, RedisServer):
            name, broker_url, results_url = "redis-pg-fault", broker.url(0), broker.url(1)
        else:
            require("redis")  # the results, on the shared Redis: the fault is the broker's alone
            name, broker_url, results_url = "rabbitmq-pg-fault", broker.url(), redis_url(REDIS_RESULTS_DB)
        conf = {
            "task_default_queue": f"jqm-fault-{uuid.uuid4().hex[:10]}",
            "jqm_auto_migrate": True,
            "broker_url": broker_url,
            "result_backend": results_url,
            "jqm_database_url": url,
            # Seconds, not minutes: a heartbeat every half second, a message gone after 3 s of no progress.
            "jqm_reconcile_interval_s": 0.5,
            "jqm_lost_after_s": 3,
            "broker_connection_retry_on_startup": True,
        }
        yield Backend(name, conf, tmp_path)


class Workers:
    """The scenario's worker, replaced by a fresh one when it has exited (Celery 5.7 on a Redis drop)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.started: list[Worker] = []
        self.replaced = 0

    def start(self) -> None:
        self.started.append(Worker(self.backend, ["--pool=prefork", "--concurrency=3"]).start())

    def keep_one_running(self) -> None:
        current = self.started[-1]
        assert current.process is not None
        if current.process.poll() is not None:
            self.replaced += 1
            self.start()

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()


def _package(name: str, marks: Path) -> Package:
    entries = []
    for order in range(1, STAGES + 1):
        count = PARALLEL if order == 2 else 1
        for n in range(count):
            label = f"o{order}-{n}"
            entries.append(Entry("tests.record", args=[str(marks), label, JOB_S], run_order=order))
    return Package(name, entries=entries)


def _run_through(backend: Backend, marks: Path, outage: str, broker: Broker) -> tuple[Run, float, int]:
    """Run the package, break the broker once its first job has started, and wait for the run's end.

    Returns the finished run, the seconds from the broker's return to the run's end, workers replaced.
    """
    workers = Workers(backend)
    workers.start()
    try:
        jqm = JobQueueManager.of(backend.app())
        name = f"fault-{uuid.uuid4().hex[:8]}"
        jqm.save(_package(name, marks))
        run = jqm.run_now(name)
        wait_until(lambda: any(m["event"] == "start" for m in read_marks(marks)), 60, "no job started")
        if outage == "restart-empty":
            broker.kill()
            time.sleep(OUTAGE_S)  # the outage itself: the broker is down this long
            broker.start()
        else:
            broker.pause()
            time.sleep(OUTAGE_S)
            broker.resume()
        back = time.monotonic()

        def finished() -> bool:
            workers.keep_one_running()
            return jqm.run(run.id).status.finished

        wait_until(finished, RUN_TIMEOUT_S, f"run {run.id} did not end after the broker came back")
        recovered_s = time.monotonic() - back
        return jqm.run(run.id), recovered_s, workers.replaced
    finally:
        workers.stop()


def _check(
    jqm: JobQueueManager, run: Run, marks: Path, outage: str, recovered_s: float, replaced: int
) -> None:
    starts = Counter(m["job_id"] for m in read_marks(marks) if m["event"] == "start")
    attempts: Counter[int] = Counter()
    interrupted: Counter[int] = Counter()
    stale: Counter[str] = Counter()
    for entry in jqm.log_entries(run_id=run.id, limit=1000):
        if entry.kind == LogKind.ATTEMPT and entry.job_id is not None:
            attempts[entry.job_id] += 1
            if entry.status == AttemptStatus.INTERRUPTED:
                interrupted[entry.job_id] += 1
        if entry.kind == LogKind.JOB_STALE:
            stale[str(entry.message)] += 1
    doubled = {job: n for job, n in starts.items() if n > 1}
    lost = [job.id for job in run.jobs if job.status is not JobStatus.DONE]
    print(
        f"\n[fault] broker {outage}: run {run.id} {run.status}, recovered {recovered_s:.1f} s after the "
        f"broker came back; jobs {len(run.jobs)}, lost {len(lost)}, bodies run {sum(starts.values())}, "
        f"doubled {len(doubled)}; reconciler: {dict(stale) or 'nothing'}; workers replaced {replaced}"
    )
    assert run.status is RunStatus.SUCCEEDED
    assert all(job.status is JobStatus.DONE for job in run.jobs), [job.status for job in run.jobs]
    assert set(starts) == {job.id for job in run.jobs}
    for job, n in starts.items():
        assert attempts[job] >= n, f"job {job}: {n} bodies run, {attempts[job]} attempts logged"
        assert n <= 1 + interrupted[job], f"job {job} ran {n} times with {interrupted[job]} interruptions"


@pytest.mark.parametrize("outage", ["restart-empty", "pause"])
def test_a_run_ends_with_every_job_once_after_the_broker_is_lost(
    backend: Backend, broker: Broker, tmp_path: Path, outage: str
) -> None:
    marks = tmp_path / f"marks-{uuid.uuid4().hex[:6]}.jsonl"
    run, recovered_s, replaced = _run_through(backend, marks, outage, broker)
    _check(JobQueueManager.of(backend.app()), run, marks, outage, recovered_s, replaced)
