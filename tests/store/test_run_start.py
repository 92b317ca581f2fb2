"""Starting a run hands back the run it created, and a run's status can be read on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jqm_celery import Entry, JobStatus, Package, RetryPolicy, RunStatus, ValidationError
from jqm_celery.errors import NotFoundError
from jqm_celery.store import Store

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _save(store: Store) -> None:
    retry = RetryPolicy(max_retries=2)
    first = Entry("t.a", run_order=10, queue="reports", description="export", retry=retry)
    store.save_package(Package("p", entries=[first, Entry("t.b", run_order=20)]), NOW)


def test_the_started_run_is_the_run_the_store_reads_back(store: Store) -> None:
    _save(store)
    plan, run, started = store.start_run("p", "test", NOW, queue_if_busy=False)

    assert started
    assert run == store.run(plan.run_id)
    assert [(j.task, j.status) for j in run.jobs] == [("t.a", JobStatus.QUEUED), ("t.b", JobStatus.QUEUED)]
    assert (run.jobs[0].queue, run.jobs[0].description, run.jobs[0].max_retries) == ("reports", "export", 2)
    planned = [(job.id, job.run_order, job.queue) for job in plan.jobs]
    assert planned == [(job.id, job.run_order, job.queue) for job in run.jobs]


def test_a_package_the_check_refuses_gets_no_run(store: Store) -> None:
    _save(store)

    def refuse(package: Package) -> None:
        raise ValidationError(f"package '{package.name}' refused")

    with pytest.raises(ValidationError, match="refused"):
        store.start_run("p", "test", NOW, queue_if_busy=False, check=refuse)
    assert store.runs("p") == []


def test_run_status_reads_the_status_alone(store: Store) -> None:
    _save(store)
    plan, _ = store.create_run("p", "test", NOW, queue_if_busy=False)

    assert store.run_status(plan.run_id) is RunStatus.RUNNING
    with pytest.raises(NotFoundError, match="run 999999 does not exist"):
        store.run_status(999_999)


def test_the_next_part_of_a_run_is_read_stage_by_stage(store: Store) -> None:
    orders = [10, 20, 20, 30, 40, 50]
    entries = [Entry(f"t.{index}", run_order=order) for index, order in enumerate(orders)]
    store.save_package(Package("long", entries=entries), NOW)
    plan, _, _ = store.start_run("long", "test", NOW, queue_if_busy=False)

    def stages(after: int, count: int | None) -> list[list[str]]:
        rest = store.remaining_plan(plan.run_id, after, stages=count)
        return [[job.task for job in stage] for stage in rest.stages()]

    assert stages(10, 2) == [["t.1", "t.2"], ["t.3"]], "a group counts as one stage"
    assert stages(10, None) == [["t.1", "t.2"], ["t.3"], ["t.4"], ["t.5"]]
    assert stages(30, 5) == [["t.4"], ["t.5"]], "fewer stages left than asked for"
    assert stages(50, 2) == []
