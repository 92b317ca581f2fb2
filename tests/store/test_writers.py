"""The writers' shared contract (jqm_celery/store/writers.py): every writer, the same results.

Run against the SQLite writer, the PostgreSQL writer, and the portable writer on PostgreSQL (what any
other database gets), through the store's public methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jqm_celery import Entry, JobStatus, LogKind, Package, RunStatus
from jqm_celery.events import Event
from jqm_celery.statuses import AttemptStatus
from jqm_celery.store import Store, writers
from jqm_celery.store.jobs import JobStore, NewJob
from jqm_celery.store.notification_models import NotificationRow
from tests.services import postgres_database

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
KINDS = {
    "sqlite": writers.SQLiteWriter,
    "postgresql": writers.PostgresWriter,
    "portable": writers.PortableWriter,
}


@pytest.fixture(params=list(KINDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'jqm.sqlite'}", auto_migrate=True)
        yield store
        store.dispose()
        return
    with postgres_database() as url:
        store = Store(url, auto_migrate=True)
        if request.param == "portable":
            store.__dict__["writer"] = writers.PortableWriter(store)
        assert type(store.writer) is KINDS[request.param]
        yield store
        store.dispose()


def _run(store: Store) -> tuple[int, list[int]]:
    store.save_package(Package("p", entries=[Entry("t.a", run_order=10), Entry("t.b", run_order=20)]), NOW)
    plan, _ = store.create_run("p", "test", NOW, queue_if_busy=False)
    return plan.run_id, [job.id for job in plan.jobs]


def test_a_claim_starts_one_attempt_and_refuses_a_second_claim(store: Store) -> None:
    _, [first, _] = _run(store)

    claimed = store.claim_job(first, "w", "task-1", NOW, redelivered=False)

    assert claimed is not None
    assert (claimed.job_id, claimed.task, claimed.run_order, claimed.retry) == (first, "t.a", 10, 0)
    assert store.claim_job(first, "w", "task-1", NOW, redelivered=False) is None


def test_a_claim_waits_for_the_earlier_run_order(store: Store) -> None:
    _, [_, second] = _run(store)

    assert store.claim_job(second, "w", "task-2", NOW, redelivered=False) is None


@pytest.mark.parametrize(
    ("outcome", "status"), [(AttemptStatus.DONE, JobStatus.DONE), (AttemptStatus.ERROR, JobStatus.ERROR)]
)
def test_an_end_records_the_outcome_and_publishes_a_failure(
    store: Store, outcome: AttemptStatus, status: JobStatus
) -> None:
    run_id, [first, _] = _run(store)
    seen: list[Event] = []
    store.listeners.append(seen.append)
    claimed = store.claim_job(first, "w", "task-1", NOW, redelivered=False)
    assert claimed is not None

    store.end_attempt(claimed, NOW, outcome, error=None if outcome is AttemptStatus.DONE else "boom")

    job = store.run(run_id).jobs[0]
    assert job.status is status
    assert [attempt.status for attempt in job.attempts] == [outcome]
    failures = [event for event in seen if event.kind is LogKind.ATTEMPT]
    assert len(failures) == (0 if outcome is AttemptStatus.DONE else 1)


def test_a_close_ends_the_run_once_and_starts_the_queued_run(store: Store) -> None:
    run_id, jobs = _run(store)
    queued, _ = store.create_run("p", "test", NOW, queue_if_busy=True)
    for job_id in jobs:
        claimed = store.claim_job(job_id, "w", f"task-{job_id}", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)

    closed = store.close_run(run_id, NOW)

    assert closed is not None
    assert closed.status is RunStatus.SUCCEEDED
    assert closed.next_run is not None
    assert closed.next_run.run_id == queued.run_id
    assert store.close_run(run_id, NOW) is None
    finished = store.log_entries(run_id=run_id, kind=LogKind.RUN_FINISHED)
    assert [entry.status for entry in finished] == [RunStatus.SUCCEEDED]


@pytest.mark.parametrize("count", [1, 3])
def test_new_jobs_get_their_ids_in_order_and_their_counters_from_the_database(
    store: Store, count: int
) -> None:
    jobs = [NewJob(f"t.{n}", [n], {}, None, {}, 0, None, None, "", f"task-{n}", None) for n in range(count)]

    ids = JobStore(store).add_jobs(jobs, NOW)

    added = [JobStore(store).job(job_id) for job_id in ids]
    assert [(job.task, job.status, job.retry) for job in added] == [
        (f"t.{n}", JobStatus.QUEUED, 0) for n in range(count)
    ]


def test_new_rows_leave_rows_with_the_same_key_alone(store: Store) -> None:
    row = {
        "event_key": "run:1:run_failed",
        "channel": "EMAIL",
        "target": "ops@example.com",
        "scenario": "RUN_FAILED",
        "subject": "first",
        "status": "PENDING",
        "created_at": NOW,
    }
    with store.transaction() as s:
        writers.of(s).add_new_rows(s, NotificationRow, [row])
    with store.transaction() as s:
        writers.of(s).add_new_rows(s, NotificationRow, [{**row, "subject": "second"}])
    with store.transaction() as s:
        subjects = [n.subject for n in s.query(NotificationRow)]
    assert subjects == ["first"]
