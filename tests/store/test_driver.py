"""PostgreSQL: the connection the store keeps for a job attempt's statements (store/driver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from jqm_celery.plans import RunPlan
from jqm_celery.statuses import AttemptStatus, JobStatus
from jqm_celery.store import Store, driver
from tests.services import postgres_database
from tests.store.test_store import _run

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_database() as database:
        yield database


def _sessions(url: str) -> list[int]:
    """Backend pids of the other sessions connected to the store's database."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def _terminate(url: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
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
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every use counts as "after idling", so the kept connection is checked each time.
    monkeypatch.setattr(driver, "PING_AFTER_IDLE_S", -1.0)
    store = Store(url, auto_migrate=True)
    try:
        plan = _run(store)
        _attempt(store, plan, 0)
        _terminate(url)

        _attempt(store, plan, 1)

        assert [job.status for job in store.run(plan.run_id).jobs] == [JobStatus.DONE, JobStatus.DONE]
    finally:
        store.dispose()
