"""A store at revision 0005 upgrades to the column defaults of 0006, and a run in flight then finishes; one
at 0006 upgrades to queues that can be paused (0007)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, inspect

from jqm_celery import RunStatus
from jqm_celery.queue_records import AuditAction
from jqm_celery.statuses import AttemptStatus, JobStatus
from jqm_celery.store import Store, migrate
from jqm_celery.store.engine import make_engine
from jqm_celery.store.jobs import JobStore, NewJob
from jqm_celery.store.models import JobRow, PackageRow, RunRow
from jqm_celery.store.queue_control import QueueControlStore
from jqm_celery.store.queue_models import QueueRow

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _run_in_flight_at_0005(engine: Engine) -> tuple[int, int]:
    """A RUNNING run of two jobs, the first DONE, written as version 0005 wrote them (every column)."""
    job = {
        "package_name": "p",
        "task": "t.a",
        "args": [],
        "kwargs": {},
        "queue": None,
        "retry_policy": {},
        "description": "",
        "retry": 0,
        "max_retries": 0,
        "current_delay_s": 0.0,
        "created_at": NOW,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(PackageRow).values(
                name="p", status="ACTIVE", on_error="STOP", catch_up="ONCE", allow_overlap=False,
                description="", version=1, created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        run_id = conn.execute(
            insert(RunRow)
            .values(
                package_name="p", status="RUNNING", trigger="test", on_error="STOP",
                stop_package_after=False, created_at=NOW, started_at=NOW,
            )
            .returning(RunRow.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(JobRow).values(
                **job, run_id=run_id, position=1, run_order=10, status="DONE", attempts=1, finished_at=NOW
            )
        )
        waiting = conn.execute(
            insert(JobRow)
            .values(**job, run_id=run_id, position=2, run_order=20, status="QUEUED", attempts=0)
            .returning(JobRow.id)
        ).scalar_one()
    return run_id, waiting


def test_a_store_at_0005_upgrades_and_its_run_in_flight_finishes(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0005")
    run_id, waiting = _run_in_flight_at_0005(engine)
    engine.dispose()
    store = Store(database_url, auto_migrate=False)

    assert store.upgrade() == ("0005", migrate.head_revision(store.engine))

    claimed = store.claim_job(waiting, "w", "task-2", NOW, redelivered=False)
    assert claimed is not None
    store.end_attempt(claimed, NOW, AttemptStatus.DONE)
    closed = store.close_run(run_id, NOW)
    assert closed is not None
    assert closed.status is RunStatus.SUCCEEDED
    store.dispose()


def test_after_the_upgrade_the_database_gives_a_new_job_its_counters(database_url: str) -> None:
    store = Store(database_url, auto_migrate=True)
    job = NewJob("t.a", [], {}, None, {}, 0, None, None, "", "task-1", None)

    [job_id] = JobStore(store).add_jobs([job], NOW)

    added = JobStore(store).job(job_id)
    assert (added.status, added.retry, added.attempts) == (JobStatus.QUEUED, 0, ())
    defaults = {c["name"]: c["default"] for c in inspect(store.engine).get_columns("jqm_job")}
    assert defaults["retry"] is not None
    assert defaults["attempts"] is not None
    store.dispose()


def test_a_store_at_0006_upgrades_to_queues_that_can_be_paused(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(
            insert(QueueRow.__table__).values(name="reports", pool_size=2, created_at=NOW, updated_at=NOW)
        )
    engine.dispose()
    store = Store(database_url, auto_migrate=False)
    assert store.upgrade() == ("0006", migrate.head_revision(store.engine))
    job = NewJob("t.a", [], {}, "reports", {}, 0, None, None, "", "task-1", None)
    [job_id] = JobStore(store).add_jobs([job], NOW)
    control = QueueControlStore(store)

    assert control.pause("reports", NOW, "ann", AuditAction.PAUSE_QUEUE)
    assert store.claim_job(job_id, "w", "task-1", NOW, redelivered=False) is None
    assert store.defer_if_paused(job_id, "task-1", NOW)
    [message] = control.resume("reports", NOW, "ann", lambda: "task-2")
    assert (message.job_id, message.celery_task_id) == (job_id, "task-2")
    assert store.claim_job(job_id, "w", "task-1", NOW, redelivered=False) is None, "the refused message"
    assert store.claim_job(job_id, "w", "task-2", NOW, redelivered=False) is not None
    store.dispose()
