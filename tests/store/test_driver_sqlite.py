"""SQLite: an attempt's statements on the connection each worker thread keeps (store/driver.py).

The writers' shared contract (test_writers.py) holds the rows to those of the other writers; these tests
hold the kept connection to what SQLAlchemy's own transactions did on an embedded store: a locked file is
an outage that a claim waits out, and a failed transaction leaves nothing behind.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, func, literal, select, update

from jqm_celery import Entry, JobStatus, Package, RunStatus
from jqm_celery.plans import ClaimedJob
from jqm_celery.statuses import AttemptStatus
from jqm_celery.store import Store, driver
from jqm_celery.store.engine import make_engine
from jqm_celery.store.models import JobRow, RunRow

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jqm.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{path}", auto_migrate=True, retry_s=30.0)
    yield store
    store.dispose()


def _first_job(store: Store) -> tuple[int, int]:
    store.save_package(Package("p", entries=[Entry("t.a", run_order=10)]), NOW)
    plan, _ = store.create_run("p", "test", NOW, queue_if_busy=False)
    return plan.run_id, plan.jobs[0].id


class _Retrying(logging.Handler):
    """Set once the store says it is retrying a write."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying for up to" in record.getMessage():
            self.seen.set()


def test_a_claim_waits_out_a_file_another_program_keeps_locked(store: Store, path: Path) -> None:
    _, job_id = _first_job(store)
    # A short busy timeout, so that the locked file soon shows as an error, which the claim retries.
    store._engine, store._pid = make_engine(store.url, sqlite_timeout_s=0.05), os.getpid()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program writing, which knows nothing of jqm's WriteLock
    retrying = _Retrying()
    logging.getLogger("jqm_celery").addHandler(retrying)
    claimed: list[ClaimedJob | None] = []
    claim = threading.Thread(
        target=lambda: claimed.append(store.claim_job(job_id, "w", "task-1", NOW, redelivered=False))
    )
    try:
        claim.start()
        assert retrying.seen.wait(20), "the claim did not say it was retrying the locked file"
        assert not claimed
        other.execute("COMMIT")
        claim.join(20)
    finally:
        logging.getLogger("jqm_celery").removeHandler(retrying)
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    assert not claim.is_alive()
    assert len(claimed) == 1
    assert claimed[0] is not None
    assert claimed[0].job_id == job_id


def test_a_failed_statement_rolls_its_transaction_back_and_the_connection_goes_on(store: Store) -> None:
    run_id, job_id = _first_job(store)
    engine = store.engine
    store.ensure_schema_once()
    rename = update(JobRow).where(JobRow.id == bindparam("p_job_id")).values(task=bindparam("p_task"))
    no_run = update(RunRow).where(RunRow.id == bindparam("p_run_id")).values(status=None)  # NOT NULL
    renamed: list[int] = []

    def rename_then_fail() -> None:
        with driver.transaction(engine):
            renamed.append(driver.execute_count(engine, rename, {"p_job_id": job_id, "p_task": "t.renamed"}))
            driver.execute_count(engine, no_run, {"p_run_id": run_id})

    with pytest.raises(sqlite3.IntegrityError):
        rename_then_fail()

    assert renamed == [1]

    assert store.run(run_id).jobs[0].task == "t.a"
    with driver.transaction(engine):
        driver.execute_count(engine, rename, {"p_job_id": job_id, "p_task": "t.renamed"})
    count = select(func.count()).select_from(JobRow).where(JobRow.task == bindparam("p_task"))
    assert driver.execute_one(engine, count, {"p_task": "t.renamed"})[0] == 1


def test_an_in_memory_store_claims_and_ends_on_the_database_its_sessions_see() -> None:
    # ":memory:" is a database per connection: the kept connection must be the one the pool hands out.
    store = Store("sqlite:///:memory:", auto_migrate=True)
    try:
        run_id, job_id = _first_job(store)
        claimed = store.claim_job(job_id, "w", "task-1", NOW, redelivered=False)
        assert claimed is not None
        store.end_attempt(claimed, NOW, AttemptStatus.DONE)
        store.close_run(run_id, NOW)
        run = store.run(run_id)
        assert (run.status, run.jobs[0].status) == (RunStatus.SUCCEEDED, JobStatus.DONE)
    finally:
        store.dispose()


def test_a_thread_that_ends_closes_the_connection_it_kept_on_an_in_memory_store() -> None:
    # There every thread's connection is a database of its own, so it is kept by the thread, not shared.
    engine = create_engine("sqlite:///:memory:")
    one = select(literal(1).label("one"))

    def use() -> None:
        assert driver.execute_one(engine, one, {}).one == 1

    try:
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        gc.collect()

        assert driver._kept.get(engine, []) == [], "the ended thread's connection is closed"
    finally:
        engine.dispose()
