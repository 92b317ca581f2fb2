"""A job hands its run over to the next (jqm_celery/handover.py), on real workers.

On PostgreSQL the end of each lone job claims the next one; on SQLite each job claims itself. Either way,
a job shows its worker while it runs, and each attempt records where and when it really started.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from jqm_celery import Entry, JobQueueManager, JobStatus, Package, RunStatus
from jqm_celery.handover import REPORT_AFTER_S, REPORT_EVERY_S
from tests.integration.conftest import Backend
from tests.integration.testapp import read_marks


def _started(marks: Path, label: str) -> dict[str, object] | None:
    return next((m for m in read_marks(marks) if m["label"] == label and m["event"] == "start"), None)


def test_a_run_is_handed_over_job_to_job_and_a_long_job_shows_its_worker_while_it_runs(
    jqm: JobQueueManager, backend: Backend, name: str, marks: Path
) -> None:
    entries = [
        Entry("tests.record", args=[str(marks), "e1"], run_order=1),
        Entry("tests.record", args=[str(marks), "e2", 4.0], run_order=2),
        Entry("tests.record", args=[str(marks), "e3"], run_order=3),
    ]
    jqm.save(Package(name, entries=entries))
    run = jqm.run_now(name)

    deadline = time.monotonic() + 30
    while _started(marks, "e2") is None:
        assert time.monotonic() < deadline, "e2 never started"
        time.sleep(0.05)
    deadline = time.monotonic() + REPORT_AFTER_S + REPORT_EVERY_S + 1.5
    while (second := jqm.run(run.id).jobs[1]).worker is None:
        assert time.monotonic() < deadline, "the running job never showed its worker"
        time.sleep(0.05)
    assert second.status is JobStatus.RUNNING, "named while it runs (e2 sleeps 4 s)"
    [attempt] = second.attempts
    assert attempt.worker == second.worker

    run = run.wait(timeout=60)
    assert run.status is RunStatus.SUCCEEDED
    attempts = [job.attempts[0] for job in run.jobs]
    assert all(a.worker == second.worker for a in attempts), "one worker ran them all"
    for before, after in itertools.pairwise(attempts):
        assert before.finished_at is not None
        assert before.finished_at <= after.started_at, "each attempt starts when it really starts"
    handed = [bool(_started(marks, label)["handed_over"]) for label in ("e1", "e2", "e3")]  # type: ignore[index]
    on_postgresql = backend.name != "embedded"
    assert handed == [False, on_postgresql, on_postgresql]
