"""Recovery after a crash: a worker is SIGKILLed in the middle of a job, a new one finishes the work.

RabbitMQ hands the killed worker's unacknowledged message to the new worker at once; Redis and the
embedded broker would wait for their visibility timeout (an hour by default), so there the reconciler of
the new worker settles the job first. Either way the interrupted attempt is the only one that runs twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jqm_celery import AttemptStatus, Entry, JobQueueManager, JobStatus, Package, RunStatus
from tests.integration.conftest import Backend, Worker, start_worker
from tests.integration.test_jobqueue import labels, wait_for, wait_job
from tests.integration.testapp import read_marks


@pytest.fixture
def fast(backend: Backend) -> Backend:
    """The backend with a reconciler that beats every half second (a worker is gone after 1.5 s)."""
    return Backend(backend.name, {**backend.conf, "jqm_reconcile_interval_s": 0.5}, backend.tmp)


def test_a_stand_alone_job_of_a_killed_worker_finishes_on_a_new_worker(
    jqm: JobQueueManager, fast: Backend, recovery_queue: str, workers: list[Worker], marks: Path
) -> None:
    first = start_worker(fast, recovery_queue, workers)
    interrupted = jqm.enqueue("tests.record", args=[str(marks), "interrupted", 2.0], queue=recovery_queue)
    wait_for(lambda: labels(marks, "start") == ["interrupted"])
    waiting = jqm.enqueue("tests.record", args=[str(marks), "waiting"], queue=recovery_queue)
    first.kill()

    start_worker(fast, recovery_queue, workers)
    done = wait_job(jqm, interrupted.id, timeout=60)
    assert wait_job(jqm, waiting.id, timeout=60).status is JobStatus.DONE

    assert done.status is JobStatus.DONE
    assert [a.status for a in done.attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.DONE]
    assert sorted(labels(marks, "start")) == ["interrupted", "interrupted", "waiting"]
    assert sorted(labels(marks, "end")) == ["interrupted", "waiting"]


def test_a_package_run_of_a_killed_worker_finishes_on_a_new_worker_in_run_order(
    jqm: JobQueueManager, fast: Backend, recovery_queue: str, workers: list[Worker], marks: Path, name: str
) -> None:
    first = start_worker(fast, recovery_queue, workers)
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.record", args=[str(marks), "a"], run_order=10, queue=recovery_queue),
                Entry("tests.record", args=[str(marks), "b", 2.0], run_order=20, queue=recovery_queue),
                Entry("tests.record", args=[str(marks), "c"], run_order=30, queue=recovery_queue),
            ],
        )
    )
    run = jqm.run_now(name)
    wait_for(lambda: labels(marks, "start") == ["a", "b"])
    first.kill()

    start_worker(fast, recovery_queue, workers)
    run = run.wait(timeout=60)

    assert run.status is RunStatus.SUCCEEDED
    assert labels(marks, "start") == ["a", "b", "b", "c"]
    assert labels(marks, "end") == ["a", "b", "c"]
    assert [a.status for a in run.job("tests.record").attempts] == [AttemptStatus.DONE]
    b = run.jobs[1]
    assert [a.status for a in b.attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.DONE]
    b_end = max(float(m["t"]) for m in read_marks(marks) if m["label"] == "b")  # type: ignore[arg-type]
    c_start = min(float(m["t"]) for m in read_marks(marks) if m["label"] == "c")  # type: ignore[arg-type]
    assert c_start > b_end
