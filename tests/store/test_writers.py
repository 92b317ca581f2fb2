"""The writers' shared contract (jqm_celery/store/writers.py): every writer, the same results.

Run against the SQLite writer, the PostgreSQL writer, and the portable writer on PostgreSQL (what any
other database gets), through the store's public methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from jqm_celery import Entry, JobStatus, LogKind, Notify, Package, RunStatus, Scenario
from jqm_celery.errors import NotFoundError, StateError
from jqm_celery.events import Event
from jqm_celery.statuses import AttemptStatus
from jqm_celery.store import Store, writers
from jqm_celery.store.jobs import JobStore, NewJob
from jqm_celery.store.notification_models import NotificationRow
from jqm_celery.store.outages import StoreUnavailable
from tests.services import postgres_database

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
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


def test_an_attempts_times_are_stored_as_every_other_time_and_filter_with_them(store: Store) -> None:
    # SQLite keeps times as text and compares them as text: an attempt written straight on the driver
    # must store them as SQLAlchemy does, or a filter at the very instant would miss it.
    run_id, [first, _] = _run(store)
    claimed = store.claim_job(first, "w", "task-1", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.DONE)

    at_now = store.log_entries(run_id=run_id, kind=LogKind.ATTEMPT, since=NOW, until=NOW + ONE_US)
    assert [(entry.job_id, entry.started_at, entry.finished_at) for entry in at_now] == [(first, NOW, NOW)]
    job = store.run(run_id).jobs[0]
    assert (job.started_at, job.finished_at) == (NOW, NOW)


def test_an_end_whose_attempt_was_taken_over_ends_nothing_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    run_id, [first, _] = _run(store)
    lost = store.claim_job(first, "w1", "task-1", NOW, redelivered=False)
    assert lost is not None
    # The same message, delivered again after its worker was lost, takes the job over.
    again = store.claim_job(first, "w2", "task-1", NOW, redelivered=True)
    assert again is not None

    store.end_attempt(lost, NOW, AttemptStatus.DONE)

    job = store.run(run_id).jobs[0]
    assert job.status is JobStatus.RUNNING
    assert [a.status for a in job.attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.RUNNING]
    assert "body may have returned" in (job.attempts[0].error or "")
    assert f"attempt {lost.log_id} of job {first}" in caplog.text
    assert "no longer running (the job is RUNNING)" in caplog.text


def test_an_outage_longer_than_the_retry_time_is_store_unavailable() -> None:
    # A server that refuses connections: port 1 on this machine.
    store = Store("postgresql+psycopg://jqm@127.0.0.1:1/jqm", auto_migrate=False, retry_s=0.3)
    store._schema_ready = True

    with pytest.raises(StoreUnavailable, match=r"could not be reached for 0.3 s.*jqm_store_retry_s"):
        store.claim_job(1, "w", "task-1", NOW, redelivered=False)


def test_a_claim_tried_again_after_a_lost_connection_takes_over_its_own_claim(store: Store) -> None:
    run_id, [first, _] = _run(store)
    tries: list[bool] = []
    claim = store.writer.claim

    def landed_then_lost(params: Any) -> Any:
        # The first try's commit lands, and its connection is lost before the answer.
        tries.append(True)
        claim(params)
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    store.writer.claim = landed_then_lost  # type: ignore[method-assign]
    claimed = store.claim_job(first, "w", "task-1", NOW, redelivered=False)

    assert claimed is not None
    assert tries == [True]
    attempts = store.run(run_id).jobs[0].attempts
    assert [a.status for a in attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.RUNNING]
    assert "before this claim was confirmed" in (attempts[0].error or "")


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


@pytest.mark.parametrize("count", [1, 20])
def test_starting_runs_writes_each_run_its_jobs_and_its_entry_and_publishes_them(
    store: Store, count: int
) -> None:
    # 20 names: more than the driver keeps the SQL of an IN list for (it builds that SQL on each call).
    names = [f"p{n:02d}" for n in range(count)]
    rule = Notify("ops@example.com", on={Scenario.RUN_FAILED})
    for n, name in enumerate(names):
        entries = [Entry("t.a", args=[n], kwargs={"k": name}, run_order=10), Entry("t.b", run_order=20)]
        store.save_package(Package(name, entries=entries, notifications=[rule] if n == 0 else []), NOW)
    seen: list[Event] = []
    store.listeners.append(seen.append)

    started = store.start_runs(list(reversed(names)), "test", NOW, queue_if_busy=False)

    assert [run.package for _, run, _ in started] == list(reversed(names))
    for plan, run, start_now in started:
        assert start_now
        assert store.run(plan.run_id) == run
        stored = store.remaining_plan(run.id, 0)
        assert stored == plan
        n = names.index(run.package)
        assert [(job.task, tuple(job.args), dict(job.kwargs)) for job in stored.jobs] == [
            ("t.a", (n,), {"k": run.package}),
            ("t.b", (), {}),
        ]
        [entry] = store.log_entries(run_id=run.id, kind=LogKind.RUN_STARTED)
        assert (entry.status, entry.started_at) == (RunStatus.RUNNING, NOW)
    assert sorted((event.run_id, event.notify) for event in seen) == sorted(
        (run.id, run.package == names[0]) for _, run, _ in started
    )


def test_starting_runs_is_all_or_none(store: Store) -> None:
    for name in ("a", "b"):
        store.save_package(Package(name, entries=[Entry("t.a")]), NOW)
    store.start_runs(["b"], "test", NOW, queue_if_busy=False)

    with pytest.raises(StateError, match="package 'b' already has a run in flight"):
        store.start_runs(["a", "b"], "test", NOW, queue_if_busy=False)
    with pytest.raises(NotFoundError, match="package 'c' does not exist"):
        store.start_runs(["a", "c"], "test", NOW, queue_if_busy=False)

    assert store.runs("a") == []
    [queued, _] = store.start_runs(["a", "b"], "test", NOW, queue_if_busy=True)
    assert queued[1].status is RunStatus.RUNNING
    assert [run.status for run in store.runs("b")] == [RunStatus.QUEUED, RunStatus.RUNNING]


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
