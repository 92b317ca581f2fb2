"""The database part of the fault suite: PostgreSQL stopped, crashed, and a worker lost between a job's
body and its end, on the test's own PostgreSQL server (``postgres_server``) with Redis or RabbitMQ.

For each fault: the run ends, every job is DONE, every body that ran has its attempt in the log, and no
job ran more often than the documented rule allows (docs/job-queue.md, "Guarantees": once, and twice
for a job whose process died after its body returned). The time from the fault's end to the run's end
is printed, not asserted.

Short by default (outages of ``OUTAGE_S``, a store retry time of ``RETRY_S``); ``JQM_FAULT_SOAK=1``
makes the outages a minute long and the retry time the default's.

This module is also the worker's entry point (``python -m tests.fault.test_database_faults CONF …``):
the test app plus ``fault.gated``, a body that waits for the test's go-ahead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery

from jqm_celery import AttemptStatus, Entry, JobQueueManager, JobStatus, Package, Run, RunStatus
from jqm_celery.job_context import current_job
from tests.fault.postgres_server import PostgresServer
from tests.integration.testapp import make_app, read_marks
from tests.processes import Process, wait_until
from tests.services import RABBITMQ_URL, REDIS_BROKER_DB, REDIS_RESULTS_DB, redis_url, require

ROOT = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("JQM_FAULT_SOAK") == "1"
OUTAGE_S = 60.0 if SOAK else 10.0
RETRY_S = 60.0 if SOAK else 2.0
RUN_TIMEOUT_S = OUTAGE_S + 4 * RETRY_S + 60.0
GATED = "fault.gated"


def make_worker_app(conf: dict[str, Any]) -> Celery:
    """The test app, plus a body that marks its start, waits for its gate file, and marks its end."""
    app = make_app(conf)

    @app.task(shared=False, name=GATED)
    def gated(marks: str, label: str, gate: str) -> str:
        job = current_job()
        start = {"label": label, "event": "start", "pid": os.getpid(), "t": time.monotonic()}
        _append(marks, {**start, "job_id": job and job.job_id, "attempt": job and job.attempt_id})
        deadline = time.monotonic() + 300
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
        _append(marks, {"label": label, "event": "end", "pid": os.getpid(), "t": time.monotonic()})
        return label

    return app


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


@dataclass
class Setup:
    """A broker's world, shared by the module's scenarios: the PostgreSQL server and a database on it,
    the app, and one worker (prefork, one process) consuming ``queue``. ``tmp``: the scenario's folder,
    for its marks and gate files (see ``scenario``)."""

    server: PostgresServer
    conf: dict[str, Any]
    tmp: Path
    broker: str
    worker_name: str
    app: Celery

    @property
    def queue(self) -> str:
        return str(self.conf["task_default_queue"])

    @property
    def marks(self) -> Path:
        return self.tmp / "marks.jsonl"

    @property
    def gate(self) -> Path:
        return self.tmp / "gate"

    def jqm(self) -> JobQueueManager:
        return JobQueueManager.of(self.app)

    def package(self, name: str, entries: list[tuple[str, list[Any]]], queue: str | None = None) -> Package:
        return Package(
            name,
            entries=[
                Entry(task, args=args, run_order=10 * (i + 1), queue=queue or self.queue)
                for i, (task, args) in enumerate(entries)
            ],
        )

    def gated(self, label: str) -> tuple[str, list[Any]]:
        return GATED, [str(self.marks), label, str(self.gate)]

    def record(self, label: str) -> tuple[str, list[Any]]:
        return "tests.record", [str(self.marks), label, 0.0]

    def started(self, label: str) -> dict[str, Any] | None:
        starts = [m for m in read_marks(self.marks) if m["label"] == label and m["event"] == "start"]
        return starts[0] if starts else None

    def ended(self, label: str) -> bool:
        return any(m["label"] == label and m["event"] == "end" for m in read_marks(self.marks))


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def world(
    request: pytest.FixtureRequest, server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    require(request.param)
    tmp = tmp_path_factory.mktemp(f"fault-{request.param}")
    database = f"jqm_fault_{uuid.uuid4().hex[:10]}"
    conf: dict[str, Any] = {
        "task_default_queue": f"jqm-fault-{uuid.uuid4().hex[:10]}",
        "jqm_auto_migrate": True,
        "jqm_database_url": server.create_database(database),
        "jqm_store_retry_s": RETRY_S,
        "jqm_retry_delays": "skip",
        "result_backend": redis_url(REDIS_RESULTS_DB),
        "broker_url": redis_url(REDIS_BROKER_DB) if request.param == "redis" else RABBITMQ_URL,
    }
    name = f"fault{uuid.uuid4().hex[:6]}@localhost"
    app = make_worker_app(conf)
    JobQueueManager.of(app).upgrade_db()
    command = [
        sys.executable, "-m", "tests.fault.test_database_faults", json.dumps(conf), "--loglevel=INFO",
        "-n", name, "--without-mingle", "--without-gossip", "--pool=prefork", "--concurrency=1",
    ]  # fmt: skip
    with Process(command, tmp / "worker.log", cwd=ROOT) as worker:
        worker.wait_for(" ready.")
        yield Setup(server, conf, tmp, request.param, name, app)
    JobQueueManager.of(app)._store.dispose()


@pytest.fixture
def setup(world: Setup, tmp_path: Path) -> Setup:
    """The world, with this scenario's folder; the server is up when a scenario starts."""
    if not world.server.accepts_connections():
        world.server.start()
    return replace(world, tmp=tmp_path)


def _finished(setup: Setup, run_id: int, since: float) -> tuple[Run, float]:
    """The run once it has finished, and the seconds from ``since`` (monotonic) to then; reads through
    the database's own restart."""

    def read() -> Run | None:
        try:
            run = setup.jqm().run(run_id)
        except Exception:  # the test's own connections see the restart too
            return None
        return run if run.status.finished else None

    run = wait_until(read, RUN_TIMEOUT_S, f"run {run_id} never finished")
    assert isinstance(run, Run)
    return run, time.monotonic() - since


def _report(setup: Setup, scenario: str, run: Run, allowed: dict[int, int], recovered_s: float) -> None:
    """Check the run against the rule, and print the scenario's line of the fault table.

    ``allowed``: how often a job's body may run, by job id (1 for the others).
    """
    starts: dict[int, int] = {}
    for mark in read_marks(setup.marks):
        if mark["event"] == "start":
            starts[int(mark["job_id"])] = starts.get(int(mark["job_id"]), 0) + 1
    lost = [job.id for job in run.jobs if job.status is not JobStatus.DONE]
    doubled = sum(max(0, starts.get(job.id, 0) - 1) for job in run.jobs)
    print(
        f"\n[fault] {scenario} on {setup.broker}: run {run.status}, "
        f"jobs {[str(job.status) for job in run.jobs]}, "
        f"attempts {[[str(a.status) for a in job.attempts] for job in run.jobs]}, "
        f"lost {len(lost)}, doubled {doubled}, recovered in {recovered_s:.1f} s"
    )
    assert run.status is RunStatus.SUCCEEDED
    assert lost == []
    for job in run.jobs:
        ran = starts.get(job.id, 0)
        assert 1 <= ran <= allowed.get(job.id, 1), f"job {job.id} ran {ran} times"
        assert len(job.attempts) == ran, f"job {job.id}: {ran} bodies ran, attempts {job.attempts}"
        assert job.attempts[-1].status == AttemptStatus.DONE


def _job_of(setup: Setup, label: str) -> int:
    mark = setup.started(label)
    assert mark is not None
    return int(mark["job_id"])


def test_postgres_down_when_the_jobs_messages_arrive(setup: Setup) -> None:
    jqm = setup.jqm()
    later = f"{setup.queue}-later"
    jqm.save(setup.package("down-on-arrival", [setup.record(f"job{i}") for i in range(4)], later))
    run = jqm.run_now("down-on-arrival")
    setup.server.stop()
    # The worker takes the run's messages while the database is out.
    replies = setup.app.control.add_consumer(later, destination=[setup.worker_name], reply=True)
    assert replies, "the worker did not answer add_consumer"
    time.sleep(OUTAGE_S)  # the outage itself
    setup.server.start()
    finished, recovered_s = _finished(setup, run.id, since=time.monotonic())
    _report(setup, "PostgreSQL down when the messages arrive", finished, {}, recovered_s)


def test_postgres_down_while_a_job_runs(setup: Setup) -> None:
    jqm = setup.jqm()
    entries = [setup.gated("long"), *(setup.record(f"after{i}") for i in range(3))]
    jqm.save(setup.package("down-while-running", entries))
    run = jqm.run_now("down-while-running")
    wait_until(lambda: setup.started("long"), 60, "the long job never started")
    setup.server.stop()
    setup.gate.touch()
    wait_until(lambda: setup.ended("long"), 60, "the long job's body never returned")
    time.sleep(OUTAGE_S)
    setup.server.start()
    finished, recovered_s = _finished(setup, run.id, since=time.monotonic())
    _report(setup, "PostgreSQL down while a job runs", finished, {}, recovered_s)


def test_postgres_crash_right_after_a_claim(setup: Setup) -> None:
    jqm = setup.jqm()
    entries = [setup.gated("claimed"), setup.record("after")]
    jqm.save(setup.package("crash-after-claim", entries))
    run = jqm.run_now("crash-after-claim")
    wait_until(lambda: setup.started("claimed"), 60, "the job never started")
    setup.server.stop("immediate")
    setup.server.start()
    up = time.monotonic()
    setup.gate.touch()
    finished, recovered_s = _finished(setup, run.id, since=up)
    _report(setup, "PostgreSQL crashed right after a claim", finished, {}, recovered_s)


def test_a_process_killed_after_the_body_returned_before_the_end(setup: Setup) -> None:
    jqm = setup.jqm()
    entries = [setup.gated("victim"), setup.record("after")]
    jqm.save(setup.package("killed-before-end", entries))
    with psycopg.connect(_plain(setup.conf["jqm_database_url"])) as lock:
        run = jqm.run_now("killed-before-end")
        wait_until(lambda: setup.started("victim"), 60, "the job never started")
        victim = _job_of(setup, "victim")
        # The end's write waits for this lock: the window between the body's return and the end.
        lock.execute("SELECT id FROM jqm_job WHERE id = %s FOR UPDATE", [victim])
        setup.gate.touch()
        wait_until(lambda: setup.ended("victim"), 60, "the body never returned")
        waiting = wait_until(lambda: _waiting_backend(setup), 60, "the end never reached the database")
        mark = setup.started("victim")
        assert mark is not None
        os.kill(int(mark["pid"]), signal.SIGKILL)
        with psycopg.connect(setup.server.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [waiting])
        killed = time.monotonic()
        lock.rollback()
        finished, recovered_s = _finished(setup, run.id, since=killed)
    _report(setup, "process killed after the body returned", finished, {victim: 2}, recovered_s)
    first = finished.jobs[0].attempts[0]
    assert first.status == AttemptStatus.INTERRUPTED
    assert "body may have returned" in (first.error or "")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _waiting_backend(setup: Setup) -> int | None:
    """The pid of the server process whose statement waits for a lock (the end's write), if any."""
    with psycopg.connect(setup.server.admin_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%jqm_job%'"
        ).fetchone()
    return None if row is None else int(row[0])


if __name__ == "__main__":
    make_worker_app(json.loads(sys.argv[1])).worker_main(["worker", *sys.argv[2:]])
