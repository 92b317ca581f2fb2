"""A worker killed in the middle of a package job does not lose the run: the broker delivers it again."""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from jqm_celery import AttemptStatus, Entry, JobQueueManager, JobStatus, Package, RunStatus
from tests.integration.conftest import Backend, Worker
from tests.integration.testapp import read_marks


def _wait_for_start(marks: Path, label: str, timeout: float = 30.0) -> int:
    """The pid of the process that started ``label``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mark in read_marks(marks):
            if mark["label"] == label and mark["event"] == "start":
                return int(mark["pid"])
        time.sleep(0.05)
    raise AssertionError(f"{label} never started")


def _package(name: str, marks: Path, queue: str) -> Package:
    return Package(
        name,
        entries=[
            Entry("tests.record", args=[str(marks), "victim", 3.0], run_order=10, queue=queue),
            Entry("tests.record", args=[str(marks), "after", 0.0], run_order=20, queue=queue),
        ],
    )


def test_a_pool_process_killed_mid_job_is_delivered_again_and_the_run_finishes(
    backend: Backend, name: str, marks: Path
) -> None:
    queue = f"loss-{uuid.uuid4().hex[:8]}"
    worker = Worker(backend, ["--pool=prefork", "--concurrency=1", "-Q", f"{backend.queue},{queue}"]).start()
    try:
        jqm = JobQueueManager.of(backend.app())
        jqm.save(_package(name, marks, queue))
        run = jqm.run_now(name)
        os.kill(_wait_for_start(marks, "victim"), signal.SIGKILL)
        run = run.wait(timeout=90)
    finally:
        worker.stop()

    assert run.status is RunStatus.SUCCEEDED
    assert [a.status for a in run.jobs[0].attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.DONE]
    labels = [m["label"] for m in read_marks(marks) if m["event"] == "start"]
    assert labels == ["victim", "victim", "after"], "only the interrupted attempt ran twice"


@pytest.mark.parametrize("backend", ["embedded", "redis-pg", "rabbitmq-pg"], indirect=True)
def test_a_whole_worker_killed_mid_job_hands_the_job_to_the_next_worker(
    backend: Backend, name: str, marks: Path
) -> None:
    # Redis and the embedded broker give a dead consumer's unacknowledged message back after their
    # visibility timeout (an hour by default); RabbitMQ as soon as the connection drops. A short timeout
    # keeps this test quick.
    transport = {**backend.conf.get("broker_transport_options", {}), "visibility_timeout": 5}
    conf = {**backend.conf, "broker_transport_options": transport}
    quick = replace(backend, conf=conf, _app=None)
    queue = f"loss-{uuid.uuid4().hex[:8]}"
    args = ["--pool=prefork", "--concurrency=1", "-Q", f"{backend.queue},{queue}"]
    first = Worker(quick, args).start()
    jqm = JobQueueManager.of(quick.app())
    jqm.save(_package(name, marks, queue))
    run = jqm.run_now(name)
    _wait_for_start(marks, "victim")
    first.kill()
    second = Worker(quick, args).start()
    try:
        run = run.wait(timeout=120)
    finally:
        second.stop()

    assert run.status is RunStatus.SUCCEEDED
    assert [a.status for a in run.jobs[0].attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.DONE]
    assert run.jobs[1].status is JobStatus.DONE
    labels = [m["label"] for m in read_marks(marks) if m["event"] == "start"]
    assert labels == ["victim", "victim", "after"]
