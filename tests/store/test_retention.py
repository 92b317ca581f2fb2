"""Run retention: finished runs older than the cut-off go, with their jobs and log entries, in batches; a
run in flight or finished recently stays; one worker a day runs the chore."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jqm_celery import Entry, JobQueueManager, Package, ValidationError
from jqm_celery.errors import ConfigError, NotFoundError
from jqm_celery.queue_records import AuditAction, CleanedRuns
from jqm_celery.retention import run_retention
from jqm_celery.store.retention import RunRetentionStore
from tests.store.conftest import FakeClock


def _finished_run(jqm: JobQueueManager, clock: FakeClock) -> int:
    _, run, _ = jqm._store.start_run("p", "test", clock.now(), queue_if_busy=False)
    jqm._store.fail_dispatch(run.id, clock.now(), "the broker refused it")
    return run.id


def test_finished_runs_older_than_the_cut_off_go_with_their_jobs_and_log_entries(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    jqm.save(Package("p", entries=[Entry("billing.export"), Entry("billing.upload", run_order=20)]))
    old = [_finished_run(jqm, clock) for _ in range(3)]
    _, in_flight, _ = jqm._store.start_run("p", "test", clock.now(), queue_if_busy=False)
    assert jqm.log_entries(run_id=old[0])
    clock.advance(timedelta(days=40))

    cleaned = jqm.clean_runs(timedelta(days=30), actor="ann")

    assert cleaned.runs == 3
    assert cleaned.log_entries >= 3
    for run_id in old:
        with pytest.raises(NotFoundError):
            jqm.run(run_id)
    assert [j.status for j in jqm.run(in_flight.id).jobs] == ["QUEUED", "QUEUED"]
    assert jqm.job(jqm.run(in_flight.id).jobs[0].id).run_id == in_flight.id
    audit = jqm.audit()[-1]
    assert (audit.action, audit.actor, audit.target) == (AuditAction.CLEAN_RUNS, "ann", "runs")


def test_a_run_that_finished_recently_stays_until_it_is_old_enough(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    jqm.save(Package("p", entries=[Entry("billing.export")]))
    run_id = _finished_run(jqm, clock)
    progress: list[tuple[int, int]] = []

    assert jqm.clean_runs(timedelta(days=30)) == CleanedRuns(0, 0)
    clock.advance(timedelta(days=31))
    cleaned = jqm.retention.clean_runs(
        timedelta(days=30), batch_size=1, progress=lambda done, total: progress.append((done, total))
    )
    assert cleaned.runs == 1
    assert progress == [(0, 1), (1, 1)]
    with pytest.raises(NotFoundError):
        jqm.run(run_id)


def test_bad_retention_input_names_the_fix(jqm: JobQueueManager) -> None:
    with pytest.raises(ValidationError, match=r"older_than must be a timedelta ≥ 0, got 30; e.g. timedelta"):
        jqm.clean_runs(30)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"jqm_run_retention_days must be a number of days > 0"):
        run_retention({"jqm_run_retention_days": "90"})
    assert run_retention({"jqm_run_retention_days": 90}) == timedelta(days=90)
    assert run_retention({}) is None


def test_one_caller_a_day_may_run_the_daily_chore(jqm: JobQueueManager, clock: FakeClock) -> None:
    chores = RunRetentionStore(jqm._store)
    day = timedelta(days=1)

    assert chores.claim_chore("retention", clock.now(), day)
    assert not chores.claim_chore("retention", clock.now(), day)
    clock.advance(timedelta(hours=23))
    assert not chores.claim_chore("retention", clock.now(), day)
    clock.advance(timedelta(hours=1))
    assert chores.claim_chore("retention", clock.now(), day)


def test_with_the_setting_the_daily_chore_cleans_old_runs_once_a_day(
    jqm: JobQueueManager, clock: FakeClock
) -> None:
    jqm.save(Package("p", entries=[Entry("billing.export")]))
    jqm.retention.keep = timedelta(days=30)
    _finished_run(jqm, clock)
    clock.advance(timedelta(days=31))
    _finished_run(jqm, clock)

    assert jqm.retention.apply_daily() == CleanedRuns(1, 2)
    clock.advance(timedelta(days=31))
    assert jqm.retention.apply_daily() == CleanedRuns(1, 2)
    assert jqm.retention.apply_daily() is None, "once a day"
    assert jqm.audit()[-1].actor == "scheduler"
