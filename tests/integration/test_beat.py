"""PackageScheduler ticks driven by an injected clock, against the real store, broker and worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery

from beat_schedules import PackageScheduler
from jqm_celery import (
    CatchUp,
    Entry,
    JobQueueManager,
    JobStatus,
    LogKind,
    Package,
    PackageStatus,
    Recurrence,
    Run,
    RunStatus,
)
from jqm_celery.store.job_records import NewJob
from jqm_celery.store.schedule import fire_due
from tests.integration.conftest import Backend
from tests.integration.testapp import _register_tasks

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> None:
        self.current += by


class Beat:
    """A PackageScheduler on its own app (same broker, store and queue as the session worker)."""

    def __init__(self, backend: Backend) -> None:
        self.clock = ManualClock(T0)
        app = Celery("jqm-tests-beat")
        app.conf.update(backend.conf)
        _register_tasks(app)
        self.jqm = JobQueueManager(app, clock=self.clock)
        self.scheduler = PackageScheduler(app, lazy=True)

    def tick(self) -> float:
        return float(self.scheduler.tick())

    def runs(self, name: str) -> list[Run]:
        return sorted(self.jqm.runs(name), key=lambda r: r.id)

    def close(self) -> None:
        """Release the SQLite lease (held until a time on this beat's clock) and the store's connections."""
        self.scheduler.close()
        self.jqm.close()


@pytest.fixture
def beat(backend: Backend, worker: object) -> Iterator[Beat]:
    started = Beat(backend)
    yield started
    # Closing releases the SQLite lease, held until a time on this test's clock that the next test's
    # beats (and real-time ones) would otherwise have to wait for.
    started.scheduler.close()
    started.jqm.close()


def _package(name: str, *recurrences: Recurrence, sleep_s: float = 0.0, **options: object) -> Package:
    return Package(
        name, entries=[Entry("tests.sleep", args=[sleep_s])], recurrences=list(recurrences), **options
    )  # type: ignore[arg-type]


def _every_minute() -> Recurrence:
    return Recurrence.every(MINUTE, earliest_start=T0)


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_due_recurrence_starts_one_run_and_advances_its_next_fire_time(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute()))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE)

    beat.tick()
    beat.tick()

    [run] = beat.runs(name)
    assert run.trigger == "recurrence"
    assert run.wait(timeout=30).status is RunStatus.SUCCEEDED
    assert beat.jqm.package(name).next_run_at == T0 + 2 * MINUTE


def test_a_tick_before_the_due_time_starts_nothing_and_sleeps_until_it(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute()))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE - timedelta(milliseconds=400))

    wait = beat.tick()

    assert beat.runs(name) == []
    assert wait <= 0.4


def test_two_recurrences_due_together_start_one_run(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), Recurrence.cron("* * * * *")))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE)

    beat.tick()

    assert len(beat.runs(name)) == 1


def test_catch_up_once_starts_one_run_for_all_missed_instants(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), catch_up=CatchUp.ONCE))
    beat.jqm.activate(name)
    beat.clock.advance(10 * MINUTE + timedelta(seconds=30))

    beat.tick()
    beat.tick()

    [run] = beat.runs(name)
    started = beat.jqm.log_entries(run_id=run.id, kind=LogKind.RUN_STARTED)
    assert "one run for 10 missed fire time(s)" in (started[0].message or "")
    assert beat.jqm.package(name).next_run_at == T0 + 11 * MINUTE


def test_catch_up_skip_starts_no_run_for_missed_instants(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), catch_up=CatchUp.SKIP))
    beat.jqm.activate(name)
    beat.clock.advance(10 * MINUTE + timedelta(seconds=30))

    beat.tick()

    assert beat.runs(name) == []
    [skipped] = beat.jqm.log_entries(package=name, kind=LogKind.FIRE_SKIPPED)
    assert "10 missed fire time(s)" in (skipped.message or "")
    assert beat.jqm.package(name).next_run_at == T0 + 11 * MINUTE


def test_catch_up_skip_still_fires_an_instant_that_is_on_time(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), catch_up=CatchUp.SKIP))
    beat.jqm.activate(name)
    beat.clock.advance(10 * MINUTE + PackageScheduler.catch_up_grace / 2)

    beat.tick()

    assert len(beat.runs(name)) == 1


def test_a_fire_while_a_run_is_in_flight_is_skipped_with_a_log_entry(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), sleep_s=3.0))
    beat.jqm.activate(name)
    busy = beat.jqm.run_now(name)
    beat.clock.advance(MINUTE)

    beat.tick()

    assert [r.id for r in beat.runs(name)] == [busy.id]
    [skipped] = beat.jqm.log_entries(package=name, kind=LogKind.FIRE_SKIPPED)
    assert "previous run still running" in (skipped.message or "")


def test_allow_overlap_queues_the_fire_behind_the_run_in_flight(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute(), sleep_s=1.0, allow_overlap=True))
    beat.jqm.activate(name)
    busy = beat.jqm.run_now(name)
    beat.clock.advance(MINUTE)

    beat.tick()

    first, queued = beat.runs(name)
    assert first.id == busy.id
    assert queued.status is RunStatus.QUEUED
    assert queued.wait(timeout=30).status is RunStatus.SUCCEEDED


def test_hold_stops_firing_and_activate_resumes_from_now(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute()))
    beat.jqm.activate(name)
    beat.jqm.hold(name)
    beat.clock.advance(5 * MINUTE)

    beat.tick()
    assert beat.runs(name) == []

    beat.jqm.activate(name)
    beat.tick()
    assert beat.runs(name) == []
    assert beat.jqm.package(name).next_run_at == T0 + 6 * MINUTE


def test_an_edit_takes_effect_at_the_next_tick(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, Recurrence.every(timedelta(hours=1), earliest_start=T0)))
    beat.jqm.activate(name)
    beat.jqm.hold(name)
    beat.jqm.save(_package(name, _every_minute()))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE)

    beat.tick()

    assert len(beat.runs(name)) == 1


def test_a_run_left_unsent_by_a_dead_beat_is_replaced_once(beat: Beat, name: str) -> None:
    beat.jqm.save(_package(name, _every_minute()))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE)
    # A beat that committed its tick and died before sending the run.
    [unsent] = fire_due(beat.jqm._store, beat.clock.now(), grace=PackageScheduler.catch_up_grace).plans
    beat.clock.advance(PackageScheduler.recover_after + timedelta(seconds=1))

    beat.tick()

    first, replacement = beat.runs(name)
    assert first.id == unsent.run_id
    assert first.status is RunStatus.STOPPED
    assert f"run {replacement.id} replaces it" in (first.stop_reason or "")
    assert replacement.wait(timeout=30).status is RunStatus.SUCCEEDED
    beat.tick()
    assert len(beat.runs(name)) == 2


def test_a_package_put_on_hold_by_its_on_error_policy_stops_firing(beat: Beat, name: str) -> None:
    beat.jqm.save(Package(name, entries=[Entry("tests.boom")], recurrences=[_every_minute()]))
    beat.jqm.activate(name)
    beat.clock.advance(MINUTE)
    beat.tick()
    [run] = beat.runs(name)
    run.wait(timeout=30)
    _wait_for(lambda: beat.jqm.package(name).status is PackageStatus.ERROR)

    beat.clock.advance(MINUTE)
    beat.tick()

    assert len(beat.runs(name)) == 1
    assert beat.jqm.package(name).next_run_at is None


def test_beat_sends_a_job_whose_message_is_gone_again(backend: Backend, worker: object) -> None:
    # A job in the store with no message anywhere (a broker restarted empty), due for ten seconds. The
    # session worker, which consumes its queue, counts a job as lost after a minute: beat's
    # reconciliations, which count it after a second, send it again.
    new = NewJob("tests.noop", [], {}, backend.queue, {}, 0, None, None, "", str(uuid.uuid4()), None)
    jqm = JobQueueManager.of(backend.app())
    [job_id] = jqm._job_queue.jobs_store.add_jobs([new], datetime.now(UTC) - timedelta(seconds=10))
    beat = Beat(Backend(backend.name, {**backend.conf, "jqm_lost_after_s": 1}, backend.tmp))

    def ticked_until_done() -> bool:
        # Each poll stands for a later reconcile interval: a job of an earlier test still moving in the
        # session queue keeps it from counting as lost until that queue has been still for a second.
        beat.scheduler._next_reconciliation = 0.0
        beat.tick()
        return jqm.job(job_id).status is JobStatus.DONE

    try:
        _wait_for(ticked_until_done, timeout=90)
    finally:
        beat.close()
    stale = [e.message for e in jqm.log_entries(job_id=job_id) if e.kind == LogKind.JOB_STALE]
    assert stale
    assert set(stale) == {"sent again"}
