"""A run longer than one sent part (compiler.CHUNK_STAGES stages) runs whole, in run order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from jqm_celery import AttemptStatus, Entry, JobQueueManager, JobStatus, Package, RetryPolicy, RunStatus
from jqm_celery.compiler import CHUNK_STAGES
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
