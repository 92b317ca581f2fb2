"""PostgreSQL: the connection the store keeps for a job attempt's statements (store/driver.py)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import bindparam, func, select, update

from jqm_celery import Entry, Package
from jqm_celery.definitions import RetryPolicy
from jqm_celery.plans import RunPlan
from jqm_celery.statuses import AttemptStatus, JobStatus
from jqm_celery.store import Store, driver
from jqm_celery.store.jobs import JobStore, NewJob
from jqm_celery.store.models import JobRow, RunRow
from tests.services import postgres_database
from tests.store.test_store import _run

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as database:
        yield database


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    store = Store(url, auto_migrate=True)
    yield store
    store.dispose()


def _dsn(url: str) -> str:
    """The store's URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _sessions(url: str) -> list[int]:
    """Backend pids of the other sessions connected to the store's database."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def _terminate(url: str) -> None:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _attempt(store: Store, plan: RunPlan, index: int) -> None:
    job = plan.jobs[index]
    claimed = store.claim_job(job.id, "w1@host", f"task-{index}", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.DONE)


def test_disposing_the_store_closes_the_connection_kept_for_attempts(url: str) -> None:
    store = Store(url, auto_migrate=True)
    plan = _run(store)
    store.engine.dispose()  # only the kept connection is left
    _attempt(store, plan, 0)
    assert len(_sessions(url)) == 1

    store.dispose()

    assert _sessions(url) == []


def test_a_kept_connection_the_server_closed_while_idle_is_replaced(
    url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every use counts as "after idling", so the kept connection is checked each time.
    monkeypatch.setattr(driver, "PING_AFTER_IDLE_S", -1.0)
    plan = _run(store)
    _attempt(store, plan, 0)
    _terminate(url)

    _attempt(store, plan, 1)

    assert [job.status for job in store.run(plan.run_id).jobs] == [JobStatus.DONE, JobStatus.DONE]


def test_a_transaction_whose_kept_connection_was_lost_before_it_began_begins_on_a_new_one(
    url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Used again within the idle time that skips the ping, as when the server restarted a moment after
    # the last use: the BEGIN finds the connection lost, and nothing of the transaction has run.
    monkeypatch.setattr(driver, "PING_AFTER_IDLE_S", 3600.0)
    store.save_package(Package("p", entries=[Entry("t.a")]), NOW)
    [(first, _, _)] = store.start_runs(["p"], "test", NOW, queue_if_busy=False)
    _terminate(url)

    [(second, _, started)] = store.start_runs(["p"], "test", NOW, queue_if_busy=True)

    assert not started
    assert [run.id for run in store.runs("p")] == [second.run_id, first.run_id]


def test_threads_starting_runs_at_once_keep_no_more_connections_open_than_the_driver_keeps_idle(
    url: str, store: Store
) -> None:
    # A client whose thread pool starts runs (a web server's, say): each thread needs a connection while
    # it starts one, none keeps it afterwards, though every thread is still alive.
    threads = driver.KEEP_IDLE * 2
    store.save_package(Package("p", entries=[Entry("t.a")]), NOW)
    store.engine.pool.dispose()  # only the driver's connections are left
    ready, started, release = threading.Barrier(threads), threading.Barrier(threads + 1), threading.Event()

    def start_one() -> None:
        ready.wait()
        store.start_runs(["p"], "test", NOW, queue_if_busy=True)
        started.wait()
        release.wait()

    pool = [threading.Thread(target=start_one) for _ in range(threads)]
    for thread in pool:
        thread.start()
    started.wait(timeout=60)
    open_meanwhile = len(_sessions(url))
    release.set()
    for thread in pool:
        thread.join()

    assert 1 <= open_meanwhile <= driver.KEEP_IDLE, f"{open_meanwhile} connections open for {threads} threads"
    assert len(store.runs("p")) == threads


def test_a_forked_child_uses_connections_of_its_own_even_if_the_fork_came_while_the_lock_was_held(
    url: str, store: Store
) -> None:
    plan = _run(store)
    _attempt(store, plan, 0)
    store.engine.pool.dispose()  # the parent keeps one idle connection now, the driver's
    [kept] = _sessions(url)
    context = multiprocessing.get_context("fork")
    got, sent = context.Pipe(duplex=False)

    def child() -> None:
        store.engine.dispose(close=False)  # as a worker's pool process does: the parent's pool is not its own
        _attempt(store, plan, 1)
        sent.send(sorted(_sessions(url)))

    # As if another thread of the parent were taking or giving back a connection at the moment of the fork.
    with driver._lock:
        process = context.Process(target=child)
        process.start()
    process.join(60)
    if process.is_alive():
        process.kill()

    assert process.exitcode == 0, "the child could not take a connection"
    seen_by_child = got.recv()
    assert kept in seen_by_child
    assert len(seen_by_child) == 2, "the child opened a connection of its own"
    # The parent goes on on its own connection, which the child left alone.
    assert driver.execute_one(store.engine, select(func.pg_backend_pid().label("pid")), {}).pid == kept
    assert [job.status for job in store.run(plan.run_id).jobs] == [JobStatus.DONE, JobStatus.DONE]


def test_a_lone_stand_alone_job_is_stored_with_its_arguments_and_retry_policy(store: Store) -> None:
    jobs = JobStore(store)
    new = NewJob(
        task="reports.build",
        args=[1, "two", {"three": 3}],
        kwargs={"region": "eu", "ids": [4, 5]},
        queue="reports",
        retry_policy=RetryPolicy(max_retries=2).to_dict(),
        max_retries=2,
        soft_time_limit_s=5.0,
        time_limit_s=None,
        description="monthly",
        celery_task_id="task-1",
        not_before=None,
    )
    [job_id] = jobs.add_jobs([new], NOW)

    job = jobs.job(job_id)
    assert (job.task, job.queue, job.status, job.max_retries) == ("reports.build", "reports", "QUEUED", 2)
    assert (job.description, job.celery_task_id, job.created_at) == ("monthly", "task-1", NOW)
    with store.transaction() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        assert (row.args, row.kwargs) == ([1, "two", {"three": 3}], {"region": "eu", "ids": [4, 5]})
        assert row.retry_policy == RetryPolicy(max_retries=2).to_dict()
        assert (row.soft_time_limit_s, row.time_limit_s, row.not_before) == (5.0, None, None)


_RECORD_COMMIT_SETTING = """
CREATE TABLE commit_setting (operation text, synchronous_commit text);
CREATE FUNCTION record_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO commit_setting VALUES (TG_OP, current_setting('synchronous_commit'));
    RETURN NULL;
END $$;
-- A deferred constraint trigger runs when its transaction commits: it sees the setting the commit uses.
CREATE CONSTRAINT TRIGGER record_commit_setting AFTER INSERT OR UPDATE ON jqm_log_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION record_commit_setting();
"""


def test_a_claim_and_the_end_of_its_attempt_both_wait_for_the_disk(url: str, store: Store) -> None:
    plan = _run(store)
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute(_RECORD_COMMIT_SETTING)

        _attempt(store, plan, 0)

        rows = conn.execute("SELECT operation, synchronous_commit FROM commit_setting").fetchall()
    assert rows == [("INSERT", "on"), ("UPDATE", "on")], "claim (log INSERT) and end (UPDATE) durable"


def test_statements_in_a_driver_transaction_commit_together_or_not_at_all(store: Store) -> None:
    plan = _run(store)
    finish = update(RunRow).where(RunRow.id == bindparam("p_run_id")).values(status="SUCCEEDED")
    statuses = select(JobRow.status).where(JobRow.run_id == bindparam("p_run_id"))

    def fail_after_the_update() -> None:
        with driver.transaction(store.engine):
            driver.execute_one(store.engine, finish, {"p_run_id": plan.run_id})
            raise RuntimeError("before the end of the block")

    with pytest.raises(RuntimeError):
        fail_after_the_update()
    assert store.run(plan.run_id).status == "RUNNING", "rolled back"

    with driver.transaction(store.engine):
        driver.execute_one(store.engine, finish, {"p_run_id": plan.run_id})
        rows = driver.execute_all(store.engine, statuses, {"p_run_id": plan.run_id})
    assert store.run(plan.run_id).status == "SUCCEEDED", "committed"
    assert [row.status for row in rows] == ["QUEUED"] * len(plan.jobs)


def test_a_close_that_waited_for_the_run_lock_sees_the_jobs_finished_meanwhile(
    url: str, store: Store
) -> None:
    plan = _run(store)
    for index in range(len(plan.jobs) - 1):
        _attempt(store, plan, index)
    last = plan.jobs[-1]
    closed: list[object] = []
    with psycopg.connect(_dsn(url)) as other:
        # Another transaction holds the run's lock and finishes its last job while the close waits for it.
        other.execute("SELECT id FROM jqm_run WHERE id = %s FOR UPDATE", [plan.run_id])
        closing = threading.Thread(target=lambda: closed.append(store.close_run(plan.run_id, NOW)))
        closing.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        with psycopg.connect(_dsn(url), autocommit=True) as watch:
            for _ in range(500):
                if watch.execute(waiting).fetchone() == (1,):
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the close never waited for the run's lock")
        other.execute("UPDATE jqm_job SET status = 'DONE', finished_at = %s WHERE id = %s", [NOW, last.id])
        other.commit()
        closing.join(10)
    assert not closing.is_alive()
    [result] = closed
    assert result is not None, "the close saw the job the other transaction finished, and closed the run"
    assert store.run(plan.run_id).status == "SUCCEEDED"


def _seq_scans(url: str) -> dict[str, int]:
    """Sequential scans of the store's tables so far, once other sessions have reported theirs."""
    threading.Event().wait(1.1)  # a session reports its table counts at most once a second
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        rows = conn.execute("SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname LIKE 'jqm_%'")
        return dict(rows.fetchall())


def test_attempts_keep_finding_their_rows_by_index_once_the_tables_have_grown(url: str, store: Store) -> None:
    store.save_package(Package("big", entries=[Entry("t.a", run_order=i) for i in range(1, 41)]), NOW)
    plan, _ = store.create_run("big", "test", NOW, queue_if_busy=False)
    for index in range(20):  # enough runs of each statement for PostgreSQL to settle on a generic plan
        _attempt(store, plan, index)
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jqm_run (package_name, trigger, status, on_error, stop_package_after, created_at) "
            "SELECT 'big', 'test', 'SUCCEEDED', 'STOP', false, now() FROM generate_series(1, 20000)"
        )
    # Flush what the kept connection has counted so far (a session reports at most once a second).
    driver.execute_one(store.engine, select(func.pg_stat_force_next_flush()), {})
    before = _seq_scans(url)

    for index in range(20, 40):
        _attempt(store, plan, index)

    driver.execute_one(store.engine, select(func.pg_stat_force_next_flush()), {})
    after = _seq_scans(url)
    assert after["jqm_run"] == before["jqm_run"], "no claim read the runs table whole"
    assert after["jqm_job"] == before["jqm_job"]
