"""``clean`` deletes only finished jobs, checked by the statement that deletes them (PostgreSQL, where
another transaction can re-add a job between the choice of a batch and its deletion)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from jqm_celery.statuses import JobStatus
from jqm_celery.store import Store
from jqm_celery.store.jobs import JobStore, NewJob
from jqm_celery.store.models import JobRow
from tests.services import postgres_database

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with postgres_database() as url:
        store = Store(url, auto_migrate=True)
        yield store
        store.dispose()


def _finished_job(store: Store) -> int:
    job = NewJob("t.a", [], {}, None, {}, 0, None, None, "", "task-1", None)
    [job_id] = JobStore(store).add_jobs([job], NOW)
    with store.transaction() as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(status=JobStatus.DONE, finished_at=NOW))
    return job_id


def _waiting_for_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        return bool(conn.execute(text(query)).scalar())


def test_a_job_re_added_while_clean_waits_to_delete_it_is_kept(store: Store) -> None:
    job_id = _finished_job(store)
    cleaned: list[tuple[int, int]] = []
    with store.engine.connect() as requeue:
        requeue.execute(update(JobRow).where(JobRow.id == job_id).values(status="QUEUED", finished_at=None))
        cleaner = threading.Thread(
            target=lambda: cleaned.append(JobStore(store).clean_batch(NOW + timedelta(days=1), 10))
        )
        cleaner.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(store):
            assert time.monotonic() < deadline, "clean did not reach the re-added job's row"
            time.sleep(0.02)
        requeue.commit()
    cleaner.join(10)

    assert cleaned == [(0, 0)]
    assert JobStore(store).job(job_id).status is JobStatus.QUEUED


def test_clean_deletes_a_finished_job_and_its_log_entries(store: Store) -> None:
    job_id = _finished_job(store)

    assert JobStore(store).clean_batch(NOW + timedelta(days=1), 10) == (1, 0)
    assert JobStore(store).cleanable(NOW + timedelta(days=1)) == 0
    assert job_id not in [j.id for j in JobStore(store).jobs()]
