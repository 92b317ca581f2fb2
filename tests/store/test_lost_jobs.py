"""Which waiting jobs count as lost (their message gone), on SQLite and PostgreSQL, by a hand-moved time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jqm_celery.queue_records import AuditAction
from jqm_celery.statuses import AttemptStatus, LogKind
from jqm_celery.store import Store
from jqm_celery.store.job_records import NewJob
from jqm_celery.store.jobs import JobStore
from jqm_celery.store.queue_control import QueueControlStore

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
LOST_AFTER = timedelta(seconds=60)
QUEUE = "billing"


@pytest.fixture
def jobs(store: Store) -> JobStore:
    jobs = JobStore(store)
    jobs.define_queue(QUEUE, 1, T0, "test")
    return jobs


def _add(jobs: JobStore, message_id: str, *, not_before: datetime | None = None) -> int:
    new = NewJob("billing.export", [], {}, QUEUE, {}, 0, None, None, "", message_id, not_before)
    [job_id] = jobs.add_jobs([new], T0)
    return job_id


def _lost(jobs: JobStore, now: datetime, consumed: tuple[str, ...] = (QUEUE,)) -> list[int]:
    return [j.job_id for j in jobs.lost(now, LOST_AFTER, consumed, "celery", 100).jobs]


def test_a_job_due_longer_than_the_setting_with_nothing_moving_is_lost(jobs: JobStore) -> None:
    job_id = _add(jobs, "m1")
    assert _lost(jobs, T0 + timedelta(seconds=59)) == []
    assert _lost(jobs, T0 + timedelta(seconds=61)) == [job_id]


def test_a_job_sent_again_names_its_new_message_once_and_is_due_again_from_then(jobs: JobStore) -> None:
    job_id = _add(jobs, "m1")
    now = T0 + timedelta(seconds=61)
    [found] = jobs.lost(now, LOST_AFTER, (QUEUE,), "celery", 100).jobs

    message = jobs.send_lost_again(found, now, "gone", "m2")
    assert message is not None
    assert message.celery_task_id == "m2"
    # Another reconciler that found it at the same time does nothing.
    assert jobs.send_lost_again(found, now, "gone", "m3") is None
    entries = jobs.store.log_entries(job_id=job_id, kind=LogKind.JOB_STALE)
    assert [(e.message, e.error) for e in entries] == [("sent again", "gone")]
    assert _lost(jobs, now + timedelta(seconds=59)) == []
    assert _lost(jobs, now + timedelta(seconds=61)) == [job_id]


def test_a_job_that_finished_at_a_time_ahead_of_now_does_not_keep_its_queue_moving(jobs: JobStore) -> None:
    # Its end was written by a clock far ahead (a client's, not the database's): no sign of movement.
    ahead = _add(jobs, "m1")
    claimed = jobs.store.claim_job(ahead, "w1", "m1", T0, redelivered=False)
    assert claimed is not None
    jobs.store.end_attempt(claimed, T0 + timedelta(days=365), AttemptStatus.DONE)
    waiting = _add(jobs, "m2")
    assert _lost(jobs, T0 + timedelta(seconds=61)) == [waiting]


def test_a_job_of_a_queue_no_live_worker_consumes_is_not_lost(jobs: JobStore) -> None:
    _add(jobs, "m1")
    assert _lost(jobs, T0 + timedelta(minutes=5), consumed=("other",)) == []


def test_a_job_of_a_paused_queue_is_not_lost(jobs: JobStore) -> None:
    _add(jobs, "m1")
    QueueControlStore(jobs.store).pause(QUEUE, T0, "test", AuditAction.PAUSE_QUEUE)
    assert _lost(jobs, T0 + timedelta(minutes=5)) == []


def test_a_job_waits_in_a_queue_that_moves_without_being_lost(jobs: JobStore) -> None:
    running = _add(jobs, "m1")
    waiting = _add(jobs, "m2")
    claimed = jobs.store.claim_job(running, "w1", "m1", T0, redelivered=False)
    assert claimed is not None
    # A job of its queue is running: the queue moves.
    assert _lost(jobs, T0 + timedelta(minutes=5)) == []
    jobs.store.end_attempt(claimed, T0 + timedelta(minutes=5), AttemptStatus.DONE)
    # … and one finished less than the setting ago.
    assert _lost(jobs, T0 + timedelta(minutes=5, seconds=59)) == []
    assert _lost(jobs, T0 + timedelta(minutes=6, seconds=1)) == [waiting]


def test_a_delayed_job_is_due_from_its_delay_on(jobs: JobStore) -> None:
    job_id = _add(jobs, "m1", not_before=T0 + timedelta(minutes=10))
    assert _lost(jobs, T0 + timedelta(minutes=10, seconds=59)) == []
    assert _lost(jobs, T0 + timedelta(minutes=11, seconds=1)) == [job_id]
