"""A run moves on through one task, and every end of a run starts the run queued behind it (real workers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jqm_celery import Entry, JobQueueManager, Package, RunStatus
from jqm_celery.compiler import FORMER_ADVANCE_TASKS
from jqm_celery.statuses import AttemptStatus
from tests.integration.testapp import read_marks


def test_cancelling_a_run_starts_the_run_queued_behind_it(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.record", args=[str(marks), "slow", 10.0], run_order=10),
                Entry("tests.record", args=[str(marks), "after", 0.0], run_order=20),
            ],
        )
    )
    first = jqm.run_now(name)
    queued = jqm.run_now(name, queue=True)
    assert queued.status is RunStatus.QUEUED
    _wait_for_mark(first, marks, "slow")

    jqm.cancel_run(first.id, actor="ops")
    second = jqm.run(queued.id).wait(timeout=90)

    assert jqm.run(first.id).status is RunStatus.STOPPED
    assert second.status is RunStatus.SUCCEEDED, second


@pytest.mark.parametrize("task", FORMER_ADVANCE_TASKS)
def test_a_message_of_a_former_advance_task_still_ends_its_run(
    jqm: JobQueueManager, name: str, task: str
) -> None:
    """A run whose last step the previous version sent as jqm.finish_run, jqm.continue_run or
    jqm.resume_run ends when a worker of this version receives it."""
    jqm.save(Package(name, entries=[Entry("tests.sleep", args=[0.0], run_order=10)]))
    store, now = jqm._store, jqm.clock.now()
    plan, started = store.create_run(name, "test", now, queue_if_busy=False)
    assert started
    [job] = plan.jobs
    claimed = store.claim_job(job.id, "test-process", f"job-{job.id}", now, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, now, AttemptStatus.DONE)

    args = (plan.run_id,) if task == "jqm.finish_run" else (plan.run_id, 10)
    jqm.app.send_task(task, args=args)

    assert jqm.run(plan.run_id).wait(timeout=60).status is RunStatus.SUCCEEDED


def _wait_for_mark(run: object, marks: Path, label: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if marks.exists() and any(m["label"] == label for m in read_marks(marks)):
            return
        time.sleep(0.05)
    pytest.fail(f"{label} never started in {run}")
