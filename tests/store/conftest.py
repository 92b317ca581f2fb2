"""The store and the Python API against both supported databases: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery

from jqm_celery import JobQueueManager
from jqm_celery.store import Store
from tests.services import REDIS_RESULTS_DB, postgres_database, redis_url


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.current = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


def _noop() -> None:
    return None


def register_billing_tasks(app: Celery) -> None:
    for task in ("billing.export", "billing.upload", "billing.notify", "billing.mark_paid"):
        app.task(name=task, shared=False)(_noop)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jqm.sqlite'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url, auto_migrate=True)
    yield store
    store.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jqm(database_url: str, clock: FakeClock) -> Iterator[JobQueueManager]:
    """A manager whose app knows a few billing tasks; nothing here needs a worker or a broker."""
    app = Celery("store-tests", set_as_current=False)
    app.conf.jqm_database_url = database_url
    app.conf.jqm_auto_migrate = True
    app.conf.result_backend = redis_url(REDIS_RESULTS_DB)
    register_billing_tasks(app)
    manager = JobQueueManager(app, clock=clock)
    yield manager
    manager.close()
