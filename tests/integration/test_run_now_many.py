"""Many packages started at once with ``run_now_many``, on a real worker, broker and store."""

from __future__ import annotations

from pathlib import Path

import pytest

from jqm_celery import (
    Entry,
    JobQueueManager,
    LogKind,
    NotFoundError,
    OnError,
    Package,
    RunStatus,
    StateError,
    ValidationError,
)
from tests.integration.testapp import read_marks


def _one_entry(name: str, marks: Path) -> Package:
    return Package(name, entries=[Entry("tests.record", args=[str(marks), name])], on_error=OnError.CONTINUE)


def test_every_package_runs_and_the_runs_come_back_in_the_order_of_the_names(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    names = [f"{name}-{index}" for index in range(6)]
    for package in names[:5]:
        jqm.save(_one_entry(package, marks))
    # One with a stage of two parallel entries between two lone ones: a chord among the lone jobs.
    jqm.save(
        Package(
            names[5],
            entries=[
                Entry("tests.record", args=[str(marks), "first"], run_order=1),
                Entry("tests.record", args=[str(marks), "left"], run_order=2),
                Entry("tests.record", args=[str(marks), "right"], run_order=2),
                Entry("tests.record", args=[str(marks), "last"], run_order=3),
            ],
        )
    )

    runs = jqm.run_now_many(names)

    assert [run.package for run in runs] == names
    assert all(run.status is RunStatus.RUNNING for run in runs)
    finished = [run.wait(timeout=60) for run in runs]
    assert [run.status for run in finished] == [RunStatus.SUCCEEDED] * len(names)
    ended = {m["label"] for m in read_marks(marks) if m["event"] == "end"}
    assert ended == {*names[:5], "first", "left", "right", "last"}
    kinds = [e.kind for e in jqm.log_entries(run_id=runs[0].id)]
    assert kinds == [LogKind.RUN_STARTED, LogKind.ATTEMPT, LogKind.RUN_FINISHED]


def test_an_unknown_name_fails_the_whole_call_and_starts_no_run(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(_one_entry(name, marks))

    with pytest.raises(NotFoundError, match=f"package '{name}x' does not exist.*did you mean '{name}'"):
        jqm.run_now_many([name, f"{name}x"])

    assert jqm.runs(package=name) == []
    assert jqm.log_entries(package=name, kind=LogKind.RUN_STARTED) == []


def test_a_package_with_a_run_in_flight_fails_the_call_unless_queued(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    slow, quick = f"{name}-slow", f"{name}-quick"
    jqm.save(Package(slow, entries=[Entry("tests.record", args=[str(marks), "slow", 1.0])]))
    jqm.save(_one_entry(quick, marks))
    first = jqm.run_now(slow)

    with pytest.raises(StateError, match=f"package '{slow}' already has a run in flight"):
        jqm.run_now_many([quick, slow])
    assert jqm.runs(package=quick) == []

    started, queued = jqm.run_now_many([quick, slow], queue=True)
    assert started.status is RunStatus.RUNNING
    assert queued.status is RunStatus.QUEUED
    first, queued = first.wait(timeout=60), queued.wait(timeout=60)
    assert started.wait(timeout=60).status is RunStatus.SUCCEEDED
    assert queued.status is RunStatus.SUCCEEDED
    assert queued.started_at is not None
    assert first.finished_at is not None
    assert queued.started_at >= first.finished_at


def test_a_name_given_twice_queues_its_second_run_behind_the_first(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(_one_entry(name, marks))

    with pytest.raises(StateError, match="already has a run in flight"):
        jqm.run_now_many([name, name])
    assert jqm.runs(package=name) == []

    first, second = jqm.run_now_many([name, name], queue=True)
    assert (first.status, second.status) == (RunStatus.RUNNING, RunStatus.QUEUED)
    assert second.wait(timeout=60).status is RunStatus.SUCCEEDED
    assert first.wait(timeout=60).status is RunStatus.SUCCEEDED


def test_one_name_instead_of_a_list_is_refused_with_the_fix(jqm: JobQueueManager, name: str) -> None:
    with pytest.raises(ValidationError, match=rf"run_now_many\(\['{name}'\]\)"):
        jqm.run_now_many(name)


def test_the_actor_is_recorded_for_each_run(jqm: JobQueueManager, name: str, marks: Path) -> None:
    names = [f"{name}-{index}" for index in range(2)]
    for package in names:
        jqm.save(_one_entry(package, marks))

    runs = jqm.run_now_many(names, actor="ann", via="API token")

    for run in runs:
        assert jqm.run_starters(run.package, [run.id]) == {run.id: "ann (API token)"}
        assert run.wait(timeout=60).status is RunStatus.SUCCEEDED
