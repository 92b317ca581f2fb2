"""Waiting jobs whose message is gone: the reconciler sends them again under a new message id.

A message is made to vanish by purging its queue before any worker consumes it (what a broker restarted
empty does to it). The workers here reconcile every half second and count a job as lost after three seconds
of no progress (``jqm_lost_after_s``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jqm_celery import Entry, JobQueueManager, JobStatus, LogKind, Package, RunStatus
from jqm_celery.store.job_records import JobMessage
from tests.integration.conftest import Backend, Worker, start_worker
from tests.integration.test_jobqueue import labels, wait_for, wait_job

pytestmark = pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)


@pytest.fixture
def fast(backend: Backend) -> Backend:
    conf = {**backend.conf, "jqm_reconcile_interval_s": 0.5, "jqm_lost_after_s": 3}
    return Backend(backend.name, conf, backend.tmp)


def _purge(jqm: JobQueueManager, queue: str) -> None:
    with jqm.app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


def _stale_entries(jqm: JobQueueManager, job_id: int) -> list[str]:
    return [str(e.message) for e in jqm.log_entries(job_id=job_id) if e.kind == LogKind.JOB_STALE]


def test_jobs_whose_messages_are_gone_run_once_and_their_old_messages_are_refused(
    jqm: JobQueueManager, fast: Backend, recovery_queue: str, workers: list[Worker], marks: Path
) -> None:
    recovery_queued = jqm.enqueue("tests.record", args=[str(marks), "queued"], queue=recovery_queue)
    delayed = jqm.enqueue(
        "tests.record", args=[str(marks), "delayed"], queue=recovery_queue, delay=timedelta(seconds=1)
    )
    _purge(jqm, recovery_queue)

    worker = start_worker(fast, recovery_queue, workers)
    assert wait_job(jqm, recovery_queued.id, timeout=60).status is JobStatus.DONE
    assert wait_job(jqm, delayed.id, timeout=60).status is JobStatus.DONE
    assert _stale_entries(jqm, recovery_queued.id) == ["sent again"]
    assert _stale_entries(jqm, delayed.id) == ["sent again"]

    # The first message of the job turns up after all: the job names the new message, so it is refused.
    job = jqm.job(recovery_queued.id)
    assert job.celery_task_id not in (None, recovery_queued.celery_task_id)
    old = JobMessage(
        job.id, None, None, job.task, 0, recovery_queue, None, None, str(recovery_queued.celery_task_id)
    )
    jqm._job_queue.send(old)
    refused = f"[{recovery_queued.celery_task_id}] succeeded"
    wait_for(lambda: any(refused in line and "'NOT_RUN'" in line for line in worker.log().splitlines()))
    assert sorted(labels(marks, "start")) == ["delayed", "queued"]
    assert len(jqm.job(recovery_queued.id).attempts) == 1


def test_a_backlog_that_moves_is_not_sent_again(
    jqm: JobQueueManager, fast: Backend, recovery_queue: str, workers: list[Worker], marks: Path
) -> None:
    start_worker(fast, recovery_queue, workers)
    # One process, five jobs of 1.2 s: the last waits about 4.8 s, longer than jqm_lost_after_s, while
    # the recovery_queue moves all along.
    jobs = [
        jqm.enqueue("tests.record", args=[str(marks), f"b{n}", 1.2], queue=recovery_queue) for n in range(5)
    ]
    for job in jobs:
        assert wait_job(jqm, job.id, timeout=60).status is JobStatus.DONE
    assert [_stale_entries(jqm, job.id) for job in jobs] == [[]] * 5
    assert labels(marks, "start") == [f"b{n}" for n in range(5)]


def test_a_package_run_whose_first_message_is_gone_ends(
    jqm: JobQueueManager, fast: Backend, recovery_queue: str, workers: list[Worker], marks: Path, name: str
) -> None:
    entries = [
        Entry("tests.record", args=[str(marks), label], run_order=order, queue=recovery_queue)
        for label, order in (("first", 1), ("g1", 2), ("g2", 2), ("last", 3))
    ]
    jqm.save(Package(name, entries=entries))
    run = jqm.run_now(name)
    _purge(jqm, recovery_queue)

    start_worker(fast, recovery_queue, workers)
    assert run.wait(timeout=60).status is RunStatus.SUCCEEDED
    assert sorted(labels(marks, "start")) == ["first", "g1", "g2", "last"]
    assert [e.message for e in jqm.log_entries(run_id=run.id) if e.kind == LogKind.JOB_STALE] == [
        "sent again"
    ]
