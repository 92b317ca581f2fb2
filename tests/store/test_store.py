"""The store's contract, on SQLite and PostgreSQL: claims, attempts, policies and the end of a run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from sqlalchemy.sql import ClauseElement

from jqm_celery import Entry, JobStatus, OnError, Package, PackageStatus, RunStatus
from jqm_celery.plans import RunPlan
from jqm_celery.statuses import AttemptStatus, LogKind, ensure_can_hold
from jqm_celery.store import Store, driver

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _package(on_error: OnError = OnError.STOP) -> Package:
    return Package("p", entries=[Entry("t.a", run_order=10), Entry("t.b", run_order=20)], on_error=on_error)


def _run(store: Store, on_error: OnError = OnError.STOP, *, activate: bool = False) -> RunPlan:
    store.save_package(_package(on_error), NOW)
    if activate:
        store.set_status("p", PackageStatus.ACTIVE, NOW, check=lambda name, status: None)
    plan, started = store.create_run("p", "test", NOW, queue_if_busy=False)
    assert started
    return plan


@contextmanager
def _writes(store: Store) -> Iterator[dict[str, int]]:
    """Counts commits and writing statements (INSERT/UPDATE/DELETE, or WITH … around them) sent to the
    database; a writing statement on an autocommit connection is a transaction of its own, so it counts
    as a commit too. Statements the store runs straight on the driver (store/driver.py) are counted where
    they enter it, and commit on their own unless they are in a driver transaction."""
    counts = {"commits": 0, "statements": 0}

    def writes(statement: str) -> bool:
        return statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE", "WITH"}

    def on_execute(conn: Connection, cursor: object, statement: str, *args: object) -> None:
        if writes(statement):
            counts["statements"] += 1
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                counts["commits"] += 1

    on_driver, in_driver_transaction = driver._execute, driver.transaction
    inside: list[bool] = []

    def execute(engine: Engine, statement: ClauseElement, params: Mapping[str, Any], **how: Any) -> Any:
        if writes(str(statement.compile(dialect=engine.dialect))):
            counts["statements"] += 1
            if not inside:
                counts["commits"] += 1
        return on_driver(engine, statement, params, **how)

    @contextmanager
    def transaction(engine: Engine) -> Iterator[None]:
        inside.append(True)
        try:
            with in_driver_transaction(engine):
                yield
        finally:
            inside.pop()
        counts["commits"] += 1

    def on_commit(conn: object) -> None:
        counts["commits"] += 1

    event.listen(store.engine, "before_cursor_execute", on_execute)
    event.listen(store.engine, "commit", on_commit)
    driver._execute, driver.transaction = execute, transaction
    try:
        yield counts
    finally:
        driver._execute, driver.transaction = on_driver, in_driver_transaction
        event.remove(store.engine, "before_cursor_execute", on_execute)
        event.remove(store.engine, "commit", on_commit)


def test_an_attempt_costs_two_transactions(store: Store) -> None:
    plan = _run(store)
    store.ensure_schema()
    with _writes(store) as counts:
        claimed = store.claim_job(plan.jobs[0].id, "w1@host", "task-1", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    assert counts["commits"] == 2


def test_on_postgresql_an_attempt_starts_and_ends_in_one_statement_each(store: Store) -> None:
    plan = _run(store)
    store.ensure_schema()
    with _writes(store) as counts:
        claimed = store.claim_job(plan.jobs[0].id, "w1@host", "task-1", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    # SQLite has no data-modifying CTEs: there each transaction is two statements.
    assert counts["statements"] == {"postgresql": 2, "sqlite": 4}[store.engine.dialect.name]
    attempt = store.run(plan.run_id).jobs[0].attempts[0]
    assert (attempt.status, attempt.worker, attempt.celery_task_id, attempt.retry) == (
        AttemptStatus.DONE,
        "w1@host",
        "task-1",
        0,
    )


def test_a_job_is_claimed_once(store: Store) -> None:
    plan = _run(store)
    first = store.claim_job(plan.jobs[0].id, "w1@host", "task-1", NOW, redelivered=False)
    assert first is not None
    assert first.retry == 0
    assert store.claim_job(plan.jobs[0].id, "w2@host", "task-1", NOW, redelivered=False) is None


def test_a_redelivered_job_is_taken_over_and_the_lost_attempt_is_logged_as_interrupted(store: Store) -> None:
    plan = _run(store)
    store.claim_job(plan.jobs[0].id, "w1@host", "task-1", NOW, redelivered=False)
    again = store.claim_job(
        plan.jobs[0].id, "w2@host", "task-1", NOW + timedelta(seconds=5), redelivered=True
    )
    assert again is not None
    store.end_attempt(again, NOW + timedelta(seconds=6), AttemptStatus.DONE)
    attempts = store.run(plan.run_id).jobs[0].attempts
    assert [(a.worker, a.status) for a in attempts] == [
        ("w1@host", AttemptStatus.INTERRUPTED),
        ("w2@host", AttemptStatus.DONE),
    ]


def test_a_finished_job_is_not_run_again_by_a_redelivery(store: Store) -> None:
    plan = _run(store)
    claimed = store.claim_job(plan.jobs[0].id, "w1@host", "t", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    assert store.claim_job(plan.jobs[0].id, "w2@host", "t", NOW, redelivered=True) is None


def test_a_failed_attempt_with_a_retry_planned_records_the_delay_and_keeps_the_job_waiting(
    store: Store,
) -> None:
    plan = _run(store)
    claimed = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.FAILED, error="boom", planned_delay_s=30.0)
    job = store.run(plan.run_id).jobs[0]
    assert job.status is JobStatus.RETRYING
    assert job.retry == 1
    assert job.current_delay == timedelta(seconds=30)
    retried = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert retried is not None
    assert retried.retry == 1


def test_stop_skips_the_rest_of_the_run_at_once_and_stops_an_active_package(store: Store) -> None:
    plan = _run(store, OnError.STOP, activate=True)
    claimed = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.ERROR, error="boom")
    store.apply_error_policy(plan.run_id, NOW, "job failed")
    run = store.run(plan.run_id)
    assert [j.status for j in run.jobs] == [JobStatus.ERROR, JobStatus.SKIPPED]
    assert store.package("p").status is PackageStatus.ERROR
    assert store.claim_job(plan.jobs[1].id, "w", "t", NOW, redelivered=False) is None
    closed = store.close_run(plan.run_id, NOW)
    assert closed is not None
    assert closed.status is RunStatus.FAILED


def test_finish_then_stop_stops_the_package_when_the_run_closes(store: Store) -> None:
    plan = _run(store, OnError.FINISH_THEN_STOP, activate=True)
    first = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert first is not None
    store.end_attempt(first, NOW, AttemptStatus.ERROR, error="boom")
    store.apply_error_policy(plan.run_id, NOW, "job failed")
    assert store.package("p").status is PackageStatus.ACTIVE
    second = store.claim_job(plan.jobs[1].id, "w", "t", NOW, redelivered=False)
    assert second is not None
    store.end_attempt(second, NOW, AttemptStatus.DONE)
    closed = store.close_run(plan.run_id, NOW)
    assert closed is not None
    assert closed.package_stopped
    assert store.package("p").status is PackageStatus.ERROR


def test_a_run_is_not_closed_while_a_job_is_unfinished_and_is_closed_once(store: Store) -> None:
    plan = _run(store)
    assert store.close_run(plan.run_id, NOW) is None
    for job in plan.jobs:
        claimed = store.claim_job(job.id, "w", "t", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    closed = store.close_run(plan.run_id, NOW)
    assert closed is not None
    assert closed.status is RunStatus.SUCCEEDED
    assert store.close_run(plan.run_id, NOW) is None
    finished = [e for e in store.log_entries(run_id=plan.run_id) if e.kind is LogKind.RUN_FINISHED]
    assert len(finished) == 1


def test_hold_skips_the_waiting_jobs_of_a_run_in_flight(store: Store) -> None:
    plan = _run(store, activate=True)
    running = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert running is not None
    store.set_status("p", PackageStatus.ON_HOLD, NOW, check=ensure_can_hold)
    store.end_attempt(running, NOW, AttemptStatus.DONE)
    run = store.run(plan.run_id)
    assert [j.status for j in run.jobs] == [JobStatus.DONE, JobStatus.SKIPPED]
    closed = store.close_run(plan.run_id, NOW)
    assert closed is not None
    assert closed.status is RunStatus.STOPPED


def test_log_entries_filter_by_status_and_page_back_by_id(store: Store) -> None:
    plan = _run(store)
    claimed = store.claim_job(plan.jobs[0].id, "w", "t", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.ERROR, error="boom")
    errors = store.log_entries(status="ERROR")
    assert [(e.entry_task, e.error) for e in errors] == [("t.a", "boom")]
    newest = store.log_entries(limit=1)
    older = store.log_entries(limit=10, before_id=newest[0].id)
    assert all(e.id < newest[0].id for e in older)
    assert len(older) == len(store.log_entries()) - 1


def test_timestamps_come_back_timezone_aware_in_utc(store: Store) -> None:
    plan = _run(store)
    run = store.run(plan.run_id)
    assert run.created_at == NOW
    assert run.created_at.tzinfo is not None


@pytest.mark.parametrize("queue", [False, True])
def test_a_second_run_is_refused_or_queued_while_one_is_in_flight(store: Store, queue: bool) -> None:
    _run(store)
    if not queue:
        with pytest.raises(Exception, match="already has a run in flight"):
            store.create_run("p", "test", NOW, queue_if_busy=False)
        return
    plan, started = store.create_run("p", "test", NOW, queue_if_busy=True)
    assert not started
    assert store.run(plan.run_id).status is RunStatus.QUEUED
