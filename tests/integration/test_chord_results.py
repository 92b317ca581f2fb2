"""A user's own chords on every backend: Redis's native join, and jqm's database result backend (the
embedded default's SQLite results, PostgreSQL results beside a PostgreSQL store), which joins a chord when
the last task of its group ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import chain, chord, group
from celery.exceptions import ChordError
from sqlalchemy import func, select

from jqm_celery import JobQueueManager
from jqm_celery.results import DatabaseResults, chords
from tests.integration.conftest import Worker
from tests.integration.testapp import read_marks
from tests.processes import wait_until


def test_a_chord_runs_its_body_once_its_group_has_ended(
    jqm: JobQueueManager, worker: Worker, marks: Path
) -> None:
    app = jqm.app
    logged = len(worker.log())
    header = group(app.signature("tests.record", (str(marks), f"part {i}")) for i in range(3))
    body = app.signature("tests.noop")
    result = chord(header)(body)
    assert result.get(timeout=30) is None
    assert sorted(m["label"] for m in read_marks(marks) if m["event"] == "end") == [
        "part 0",
        "part 1",
        "part 2",
    ]
    # No celery.chord_unlock polled the group (the worker logs each task it receives, the unlock first).
    assert "celery.chord_unlock" not in worker.log()[logged:]
    if isinstance(app.backend, DatabaseResults):
        assert _open_chords(app.backend) == 0  # joined by its last task, and forgotten


def test_a_chord_whose_group_failed_calls_its_error_callback(jqm: JobQueueManager, marks: Path) -> None:
    app = jqm.app
    header = group([app.signature("tests.noop"), app.signature("tests.boom", ("part failed",))])
    errback = app.signature("tests.record", (str(marks), "errback"), immutable=True)
    body = app.signature("tests.noop").set(link_error=[errback])
    result = chord(header)(body)
    wait_until(result.ready, 30, "the chord's body never ended")
    assert isinstance(result.result, ChordError)
    assert "part failed" in str(result.result)
    wait_until(lambda: any(m["label"] == "errback" for m in read_marks(marks)), 30, "no error callback")


def _open_chords(backend: DatabaseResults) -> int:
    session = backend.ResultSession()
    try:
        return int(session.scalar(select(func.count()).select_from(chords)))
    finally:
        session.close()


def test_a_chain_of_groups_runs_each_group_once_the_one_before_has_ended(
    jqm: JobQueueManager, marks: Path
) -> None:
    # Each group is followed by one task, the chord's body, as jqm compiles a run: Celery gives the rest of
    # the chain to that body (two groups in a row would give it to every task of the first).
    app = jqm.app
    steps = []
    for stage in range(10):
        record = app.signature("tests.record", (str(marks), f"stage {stage}"), immutable=True)
        steps += [group([record, record.clone()]), app.signature("tests.noop", immutable=True)]
    assert chain(*steps).apply_async().get(timeout=60) is None
    marked = read_marks(marks)
    assert len(marked) == 40  # each task once, start and end
    for stage in range(1, 10):
        before = max(m["t"] for m in marked if m["label"] == f"stage {stage - 1}" and m["event"] == "end")
        starts = [m["t"] for m in marked if m["label"] == f"stage {stage}" and m["event"] == "start"]
        assert min(starts) >= before


def test_a_chord_whose_group_holds_a_chain_waits_for_the_chains_last_task(
    jqm: JobQueueManager, marks: Path
) -> None:
    # Celery counts a chain in a chord's group as one task, its last (the chord's size); the others of
    # the chain end without ending the count.
    app = jqm.app

    def record(label: str) -> Any:
        return app.signature("tests.record", (str(marks), label), immutable=True)

    header = group([chain(record("first"), record("second")), record("alone")])
    assert chord(header)(record("body")).get(timeout=30) == "body"
    marked = read_marks(marks)
    body = min(m["t"] for m in marked if m["label"] == "body" and m["event"] == "start")
    assert all(m["t"] < body for m in marked if m["event"] == "end" and m["label"] != "body")
    assert sorted(m["label"] for m in marked if m["event"] == "end") == ["alone", "body", "first", "second"]
