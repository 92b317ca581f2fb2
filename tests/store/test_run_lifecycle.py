"""Every end of a run starts its package's next queued run, and every start tells the listeners: the store's
run lifecycle (jqm_celery/store/lifecycle.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from jqm_celery import Entry, JobStatus, Package, PackageStatus, Recurrence, RunStatus
from jqm_celery.events import Event
from jqm_celery.plans import RunPlan
from jqm_celery.statuses import AttemptStatus, LogKind, ensure_can_hold
from jqm_celery.store import Store, lifecycle
from jqm_celery.store.jobs import JobStore
from jqm_celery.store.models import JobRow
from jqm_celery.store.schedule import fire_due, recover_unsent

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _save(store: Store, *, recurrences: list[Recurrence] | None = None) -> None:
    package = Package(
        "p",
        entries=[Entry("t.a", run_order=10), Entry("t.b", run_order=20)],
        recurrences=recurrences or [],
    )
    store.save_package(package, NOW)


def _running_and_queued(store: Store) -> tuple[RunPlan, RunPlan]:
    _save(store)
    first, started = store.create_run("p", "test", NOW, queue_if_busy=False)
    assert started
    second, started = store.create_run("p", "test", NOW, queue_if_busy=True)
    assert not started
    return first, second


def _finish_all(store: Store, plan: RunPlan) -> None:
    for job in plan.jobs:
        claimed = store.claim_job(job.id, "w", f"task-{job.id}", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)


def _listening(store: Store) -> list[Event]:
    seen: list[Event] = []
    store.listeners.append(seen.append)
    return seen


def _started_runs(seen: list[Event]) -> list[int | None]:
    return [event.run_id for event in seen if event.kind is LogKind.RUN_STARTED]


def test_closing_a_run_starts_the_queued_run_behind_it_and_says_so(store: Store) -> None:
    first, second = _running_and_queued(store)
    _finish_all(store, first)
    seen = _listening(store)

    closed = store.close_run(first.run_id, NOW)

    assert closed is not None
    assert closed.next_run is not None
    assert closed.next_run.run_id == second.run_id
    assert [job.id for job in closed.next_run.jobs] == [job.id for job in second.jobs]
    assert store.run(second.run_id).status is RunStatus.RUNNING
    assert _started_runs(seen) == [second.run_id]


def test_cancelling_a_run_starts_the_queued_run_behind_it(store: Store) -> None:
    first, second = _running_and_queued(store)
    seen = _listening(store)

    cancelled = JobStore(store).cancel_run(first.run_id, NOW, "ops")

    assert cancelled.next_run is not None
    assert cancelled.next_run.run_id == second.run_id
    assert store.run(first.run_id).status is RunStatus.STOPPED
    assert store.run(second.run_id).status is RunStatus.RUNNING
    assert _started_runs(seen) == [second.run_id]
    # Nothing is in flight but the started run: another run may be queued behind it, none refused.
    _, started = store.create_run("p", "test", NOW, queue_if_busy=True)
    assert not started


def test_cancelling_a_queued_run_leaves_the_running_one_alone(store: Store) -> None:
    first, second = _running_and_queued(store)

    cancelled = JobStore(store).cancel_run(second.run_id, NOW, "ops")

    assert cancelled.next_run is None
    assert store.run(second.run_id).status is RunStatus.STOPPED
    assert store.run(first.run_id).status is RunStatus.RUNNING


def test_a_run_that_could_not_be_sent_ends_failed_and_starts_the_queued_run(store: Store) -> None:
    first, second = _running_and_queued(store)

    following = store.fail_dispatch(first.run_id, NOW, "broker down")

    assert following is not None
    assert following.run_id == second.run_id
    failed = store.run(first.run_id)
    assert failed.status is RunStatus.FAILED
    assert {job.status for job in failed.jobs} == {JobStatus.SKIPPED}
    assert store.run(second.run_id).status is RunStatus.RUNNING


def test_a_hold_ends_the_queued_run_without_starting_another(store: Store) -> None:
    first, second = _running_and_queued(store)
    store.set_status("p", PackageStatus.ACTIVE, NOW, check=lambda name, status: None)

    store.set_status("p", PackageStatus.ON_HOLD, NOW, check=ensure_can_hold)

    assert store.run(second.run_id).status is RunStatus.STOPPED
    closed = store.close_run(first.run_id, NOW)
    assert closed is not None
    assert closed.status is RunStatus.STOPPED
    assert closed.next_run is None


def test_a_run_queued_while_the_one_before_it_is_closing_starts_at_once(store: Store) -> None:
    """The run's end and a new run's start are ordered: the new run sees the end, or the end sees it."""
    _save(store)
    first, _ = store.create_run("p", "test", NOW, queue_if_busy=False)
    _finish_all(store, first)
    outcome: list[bool] = []
    starting = threading.Thread(
        target=lambda: outcome.append(store.create_run("p", "test", NOW, queue_if_busy=True)[1])
    )
    with store.transaction() as s:
        closed = lifecycle.close(s, first.run_id, NOW)
        assert closed is not None
        assert closed.next_run is None
        starting.start()
        if store.engine.dialect.name != "sqlite":
            # SQLite runs one write transaction at a time; on PostgreSQL, wait until the start waits on
            # the closing run's lock (without that lock it would read the run as still running).
            _wait_for_a_lock_wait(store)
    starting.join(timeout=30)

    assert outcome == [True], "the run was started, not queued behind a run that had ended"


def _wait_for_a_lock_wait(store: Store, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    with store.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the new run's start never waited for the closing run's lock")


def test_a_job_handed_over_by_the_previous_version_is_skipped_after_a_hold(store: Store) -> None:
    """The previous version claimed a job for its message at the end of the job before it; a hold that
    comes before that message arrives skips the job, as it skips a job that has not started."""
    _save(store)
    store.set_status("p", PackageStatus.ACTIVE, NOW, check=lambda name, status: None)
    plan, _ = store.create_run("p", "test", NOW, queue_if_busy=False)
    first, following = plan.jobs
    claimed = store.claim_job(first.id, "w", "task-1", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    handed = store.claim_job(following.id, "w", "task-2", NOW, redelivered=False)
    assert handed is not None
    with store.transaction() as s:
        s.execute(update(JobRow).where(JobRow.id == following.id).values(worker=None))

    store.set_status("p", PackageStatus.ON_HOLD, NOW, check=ensure_can_hold)

    assert store.start_handed_over(handed, "w2", "task-2", NOW) is JobStatus.SKIPPED
    assert store.run(plan.run_id).jobs[1].status is JobStatus.SKIPPED


def test_a_run_beat_recovers_tells_the_listeners_it_started(store: Store) -> None:
    every_minute = Recurrence.every(timedelta(minutes=1), earliest_start=NOW)
    _save(store, recurrences=[every_minute])
    store.set_status("p", PackageStatus.ACTIVE, NOW, check=lambda name, status: None)
    [unsent] = fire_due(store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10)).plans
    seen = _listening(store)

    [replacement] = recover_unsent(store, NOW + timedelta(minutes=5), older_than=timedelta(minutes=1))

    assert replacement.run_id != unsent.run_id
    assert _started_runs(seen) == [replacement.run_id]
    finished = [event for event in seen if event.kind is LogKind.RUN_FINISHED]
    assert [(event.run_id, event.status) for event in finished] == [(unsent.run_id, RunStatus.STOPPED)]
