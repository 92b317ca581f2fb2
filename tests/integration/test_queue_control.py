"""Pausing, resuming and shutting down a queue, with real workers that consume it and a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from jqm_celery import Entry, JobQueueManager, JobStatus, Package, RunStatus, ValidationError
from jqm_celery.queue_records import AuditAction
from jqm_celery.store.models import JobRow
from tests.integration.conftest import Worker
from tests.integration.test_jobqueue import labels, wait_for, wait_job

BROKERS = pytest.mark.parametrize("backend", ["redis-pg", "rabbitmq-pg"], indirect=True)


def deferred(jqm: JobQueueManager, job_ids: list[int]) -> set[int]:
    """The jobs whose message a worker refused because their queue was paused (the positive signal)."""
    with jqm._store.transaction() as s:
        found = s.scalars(select(JobRow.id).where(JobRow.id.in_(job_ids), JobRow.deferred_at.is_not(None)))
        return set(found)


@BROKERS
def test_a_paused_queues_jobs_do_not_start_on_either_worker_until_it_is_resumed(
    jqm: JobQueueManager, own_queue: str, queue_workers: list[Worker], marks: Path
) -> None:
    paused = jqm.pause_queue(own_queue, actor="ann")
    assert paused.paused
    queue_workers[1].start()  # a worker that starts after the pause honours it too
    jobs = [jqm.enqueue("tests.record", args=[str(marks), f"j{i}"], queue=own_queue) for i in range(6)]
    ids = [j.id for j in jobs]

    wait_for(lambda: deferred(jqm, ids) == set(ids))
    assert labels(marks, "start") == []
    assert {jqm.job(i).status for i in ids} == {JobStatus.QUEUED}
    assert len(jqm.queue_control.queue(own_queue).workers) == 2

    resumed = jqm.resume_queue(own_queue, actor="ann")
    assert not resumed.paused
    assert {wait_job(jqm, i).status for i in ids} == {JobStatus.DONE}
    assert sorted(labels(marks, "end")) == [f"j{i}" for i in range(6)]
    actions = [(e.action, e.actor, e.target) for e in jqm.audit(limit=5)]
    assert (AuditAction.PAUSE_QUEUE, "ann", f"queue '{own_queue}'") in actions
    assert (AuditAction.RESUME_QUEUE, "ann", f"queue '{own_queue}'") in actions


@BROKERS
def test_a_package_run_whose_job_is_in_a_paused_queue_finishes_after_resume(
    jqm: JobQueueManager, own_queue: str, queue_workers: list[Worker], name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.record", args=[str(marks), "first"], run_order=10),
                Entry("tests.record", args=[str(marks), "paused"], run_order=20, queue=own_queue),
                Entry("tests.record", args=[str(marks), "last"], run_order=30),
            ],
        )
    )
    jqm.pause_queue(own_queue)
    run = jqm.run_now(name)
    paused_job = run.jobs[1].id

    wait_for(lambda: deferred(jqm, [paused_job]) == {paused_job})
    assert labels(marks, "end") == ["first"]
    assert jqm.run(run.id).status is RunStatus.RUNNING

    jqm.resume_queue(own_queue)
    assert run.wait(timeout=60).status is RunStatus.SUCCEEDED
    assert labels(marks, "end") == ["first", "paused", "last"]


@BROKERS
def test_shutting_a_queue_down_aborts_its_running_job_and_keeps_the_next_one_queued(
    jqm: JobQueueManager, own_queue: str, queue_workers: list[Worker], marks: Path
) -> None:
    running = jqm.enqueue("tests.record", args=[str(marks), "long", 60.0], queue=own_queue)
    wait_for(lambda: jqm.job(running.id).status is JobStatus.RUNNING)

    state = jqm.shut_down_queue(own_queue, actor="root")
    waiting = jqm.enqueue("tests.record", args=[str(marks), "next"], queue=own_queue)
    assert state.paused
    assert jqm.job(running.id).status is JobStatus.ABORTED
    wait_for(lambda: deferred(jqm, [waiting.id]) == {waiting.id})
    assert jqm.job(waiting.id).status is JobStatus.QUEUED
    assert AuditAction.SHUT_DOWN_QUEUE in [e.action for e in jqm.audit(limit=5)]

    jqm.resume_queue(own_queue)
    assert wait_job(jqm, waiting.id).status is JobStatus.DONE
    assert labels(marks, "end") == ["next"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_pausing_a_queue_that_is_not_defined_names_the_fix(jqm: JobQueueManager, own_queue: str) -> None:
    with pytest.raises(
        ValidationError, match=rf"queue '{own_queue}x' is not defined; did you mean '{own_queue}'\?"
    ):
        jqm.pause_queue(own_queue + "x")
