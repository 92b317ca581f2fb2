"""A run longer than one sent part (compiler.CHUNK_STAGES stages) runs whole, in run order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from jqm_celery import AttemptStatus, Entry, JobQueueManager, JobStatus, Package, RetryPolicy, RunStatus
from jqm_celery.compiler import CHUNK_STAGES
from jqm_celery.store.models import JobRow
from tests.integration.conftest import Backend
from tests.integration.testapp import read_marks

FAST_RETRY = RetryPolicy(
    max_retries=2, base_delay=timedelta(milliseconds=200), max_delay=timedelta(seconds=1)
)


def test_a_run_longer_than_one_part_runs_in_order_and_a_retry_in_the_second_part_keeps_its_place(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    size = CHUNK_STAGES + 6
    flaky_order = CHUNK_STAGES + 3
    entries = [
        Entry("tests.flaky", args=[str(marks), "flaky", 1], run_order=order, retry=FAST_RETRY)
        if order == flaky_order
        else Entry("tests.record", args=[str(marks), f"e{order}"], run_order=order)
        for order in range(1, size + 1)
    ]
    jqm.save(Package(name, entries=entries))

    run = jqm.run_now(name).wait(timeout=90)

    assert run.status is RunStatus.SUCCEEDED
    started = [m["label"] for m in read_marks(marks) if m["event"] in ("start", "call")]
    before = [f"e{order}" for order in range(1, flaky_order)]
    after = [f"e{order}" for order in range(flaky_order + 1, size + 1)]
    assert started == [*before, "flaky", "flaky", *after], "the retry ran before every later entry"
    flaky = run.job("tests.flaky")
    assert [(a.retry, a.status) for a in flaky.attempts] == [
        (0, AttemptStatus.FAILED),
        (1, AttemptStatus.DONE),
    ]
    assert all(job.status is JobStatus.DONE for job in run.jobs)


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_the_processes_that_send_a_runs_parts_keep_no_subscription_to_their_parallel_jobs_results(
    jqm: JobQueueManager, backend: Backend, name: str, marks: Path
) -> None:
    """Celery registers a chord's group results to be waited on wherever it freezes or sends the chord: on
    Redis that process subscribes to each result's channel for as long as it lives, though nothing in it
    waits. Here ``run_now`` sends a part that starts with a group; the worker sends each part after it (a
    part ends with its first group), and Celery's chain sends a part's closing chord on from the worker,
    after the job before it."""
    import redis

    last_group = CHUNK_STAGES + 1
    grouped_stages = (1, 3, last_group)
    entries = [
        Entry("tests.record", args=[str(marks), f"s{stage}-{i}"], run_order=stage)
        for stage in range(1, last_group + 2)
        for i in range(2 if stage in grouped_stages else 1)
    ]
    jqm.save(Package(name, entries=entries))

    run = jqm.run_now(name).wait(timeout=90)

    assert run.status is RunStatus.SUCCEEDED
    with jqm._store.transaction() as s:
        grouped = s.scalars(
            select(JobRow.celery_task_id).where(JobRow.run_id == run.id, JobRow.run_order.in_(grouped_stages))
        ).all()
    assert len(grouped) == 6
    assert all(grouped)
    channels = [jqm.app.backend.get_key_for_task(task_id) for task_id in grouped]
    subscribers = redis.Redis.from_url(backend.conf["result_backend"]).pubsub_numsub(*channels)
    assert [count for _, count in subscribers] == [0] * 6
