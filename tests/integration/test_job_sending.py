"""How stand-alone jobs are stored and sent: what the fast path must keep true."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from jqm_celery import JobQueueManager, JobStatus
from jqm_celery.jobqueue import JobSpec
from jqm_celery.store import Store
from jqm_celery.store.jobs import JobStore

ONE_BACKEND = pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
FINISHED = {JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED, JobStatus.ABORTED}


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@ONE_BACKEND
def test_a_stand_alone_job_that_succeeds_stores_no_result_in_the_result_backend(jqm: JobQueueManager) -> None:
    job = jqm.enqueue("tests.noop")
    wait_for(lambda: jqm.job(job.id).status in FINISHED)

    assert jqm.job(job.id).status is JobStatus.DONE
    assert jqm.app.AsyncResult(job.celery_task_id).state == "PENDING"


@ONE_BACKEND
def test_a_queue_defined_by_another_process_is_accepted_at_once(jqm: JobQueueManager) -> None:
    first, second = f"qa{time.monotonic_ns()}", f"qb{time.monotonic_ns()}"
    jqm.define_queue(first, pool_size=1)
    # Nothing consumes these queues: the jobs stay QUEUED and are cancelled at the end.
    waiting = [jqm.enqueue("tests.noop", queue=first)]
    other = Store(jqm._store.url)
    try:
        JobStore(other).define_queue(second, 1, jqm.clock.now(), "elsewhere")
    finally:
        other.dispose()

    waiting.append(jqm.enqueue("tests.noop", queue=second))

    assert [jqm.job(job.id).queue for job in waiting] == [first, second]
    for job in waiting:
        jqm.cancel(job.id)


@pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)
def test_enqueue_many_stores_the_jobs_in_order_and_runs_each(jqm: JobQueueManager) -> None:
    jobs = jqm.enqueue_many("tests.noop", [JobSpec(description=f"job {i}") for i in range(30)])

    assert [job.description for job in jobs] == [f"job {i}" for i in range(30)]
    assert [jqm.job(job.id).description for job in jobs] == [f"job {i}" for i in range(30)]
    assert jobs == sorted(jobs, key=lambda job: job.id)
    wait_for(lambda: all(jqm.job(job.id).status in FINISHED for job in jobs))
    assert {jqm.job(job.id).status for job in jobs} == {JobStatus.DONE}
