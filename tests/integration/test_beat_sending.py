"""How PackageScheduler fires and sends the runs of a tick: every due run inserted first, in transactions
of ``batch_size``, then sent in publish batches, each marked with the time it reached the broker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from jqm_celery import Entry, Package, RunStatus
from jqm_celery.firing import SEND_CHUNK
from jqm_celery.store.beat_models import FireRow
from tests.integration.conftest import Backend
from tests.integration.test_beat import MINUTE, Beat, _every_minute


@pytest.fixture
def beat(backend: Backend, worker: object) -> Iterator[Beat]:
    started = Beat(backend)
    yield started
    started.scheduler.close()
    started.jqm.close()


# Redis is the transport with publish batches; the others send each run at once (test_beat covers them).
@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_more_runs_due_than_one_batch_all_reach_the_worker_and_are_marked_sent(beat: Beat, name: str) -> None:
    names = [f"{name}-{i:03d}" for i in range(SEND_CHUNK + 5)]
    for package in names:
        beat.jqm.save(Package(package, entries=[Entry("tests.noop")], recurrences=[_every_minute()]))
        beat.jqm.activate(package)
    beat.clock.advance(MINUTE)
    beat.scheduler.batch_size = 40

    assert beat.tick() > 0, "nothing is left due"

    runs = [run for package in names for run in beat.jqm.runs(package)]
    assert len(runs) == len(names), "one tick fired them all, in three transactions"
    deadline = time.monotonic() + 60
    for run in runs:
        assert run.wait(timeout=max(deadline - time.monotonic(), 1)).status is RunStatus.SUCCEEDED
    with beat.jqm._store.transaction() as s:
        sent = s.scalars(select(FireRow.sent_at).where(FireRow.package_name.in_(names))).all()
    assert len(sent) == len(names)
    assert None not in sent


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_a_tick_fires_at_most_fire_per_tick_and_the_next_tick_follows_at_once(beat: Beat, name: str) -> None:
    names = [f"{name}-{i:02d}" for i in range(25)]
    for package in names:
        beat.jqm.save(Package(package, entries=[Entry("tests.noop")], recurrences=[_every_minute()]))
        beat.jqm.activate(package)
    beat.clock.advance(MINUTE)
    beat.scheduler.batch_size, beat.scheduler.fire_per_tick = 4, 10

    assert beat.tick() == 0.0, "more are due"
    assert sum(len(beat.jqm.runs(package)) for package in names) == 12, "three transactions of four"
    assert beat.tick() == 0.0
    assert beat.tick() > 0
    assert sum(len(beat.jqm.runs(package)) for package in names) == len(names)
    with beat.jqm._store.transaction() as s:
        unsent = s.scalar(
            select(func.count())
            .select_from(FireRow)
            .where(FireRow.package_name.in_(names), FireRow.sent_at.is_(None))
        )
    assert unsent == 0


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_a_tick_sends_what_it_has_once_its_runs_have_fire_jobs_per_tick_jobs(beat: Beat, name: str) -> None:
    names = [f"{name}-{i:02d}" for i in range(6)]
    for package in names:
        entries = [Entry("tests.noop", run_order=order) for order in (10, 20, 30)]
        beat.jqm.save(Package(package, entries=entries, recurrences=[_every_minute()]))
        beat.jqm.activate(package)
    beat.clock.advance(MINUTE)
    beat.scheduler.batch_size, beat.scheduler.fire_jobs_per_tick = 2, 7

    assert beat.tick() == 0.0, "more are due"
    assert sum(len(beat.jqm.runs(package)) for package in names) == 4, "6 jobs < 7, then 12: two transactions"
    assert beat.tick() > 0, "nothing is left due"
    runs = [run for package in names for run in beat.jqm.runs(package)]
    assert len(runs) == len(names)
    deadline = time.monotonic() + 60
    for run in runs:
        assert run.wait(timeout=max(deadline - time.monotonic(), 1)).status is RunStatus.SUCCEEDED
