"""The SQLite beat lease across PackageScheduler's life: a beat that closes hands it over at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery

from beat_schedules import PackageScheduler
from jqm_celery import JobQueueManager
from jqm_celery.store.schedule import fire_due
from tests.store.conftest import FakeClock


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Celery]:
    app = Celery("beat-lease-tests", set_as_current=False)
    app.conf.jqm_database_url = f"sqlite:///{tmp_path / 'jqm.sqlite'}"
    app.conf.jqm_auto_migrate = True
    manager = JobQueueManager(app, clock=clock)
    yield app
    manager.close()


def _leads(app: Celery, holder: str) -> bool:
    jqm = JobQueueManager.of(app)
    return fire_due(jqm._store, jqm.clock.now(), grace=timedelta(seconds=10), holder=holder).leader


def test_a_beat_that_closes_lets_another_beat_tick_at_once(app: Celery) -> None:
    stopping = PackageScheduler(app, lazy=True)
    stopping.tick()

    stopping.close()

    assert _leads(app, "the other beat")


def test_a_beat_that_is_still_up_keeps_the_lease(app: Celery) -> None:
    holding = PackageScheduler(app, lazy=True)
    holding.tick()

    assert not _leads(app, "the other beat")


def test_closing_a_beat_that_waits_leaves_the_lease_to_its_holder(app: Celery) -> None:
    holding = PackageScheduler(app, lazy=True)
    waiting = PackageScheduler(app, lazy=True)
    holding.tick()
    waiting.tick()

    waiting.close()

    assert not _leads(app, "the other beat")
    assert _leads(app, holding.holder)
