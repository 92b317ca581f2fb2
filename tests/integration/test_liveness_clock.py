"""One clock for liveness: a worker whose clock is ten minutes off is judged by the database's clock.

The worker's jqm clock is shifted (``tests_clock_shift_s``, a test-only setting of the test app): all it
writes and compares by its own clock is off, as on a machine whose clock is wrong. Its heartbeats carry
the database's time all the same (on SQLite, whose database is a file on this machine, this machine's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jqm_celery import JobQueueManager, JobStatus, LogKind
from tests.integration.conftest import Backend, Worker, start_worker
from tests.integration.test_jobqueue import labels, wait_for, wait_job
from tests.integration.testapp import CLOCK_SHIFT_SETTING

pytestmark = pytest.mark.parametrize("backend", ["embedded", "redis-pg"], indirect=True)

TEN_MINUTES_S = 600.0


def _fast(backend: Backend, shift_s: float = 0.0) -> Backend:
    conf = {**backend.conf, "jqm_reconcile_interval_s": 0.5, CLOCK_SHIFT_SETTING: shift_s}
    return Backend(backend.name, conf, backend.tmp)


def _stale(jqm: JobQueueManager, job_id: int) -> int:
    return sum(1 for e in jqm.log_entries(job_id=job_id) if e.kind == LogKind.JOB_STALE)


def test_a_worker_whose_clock_is_behind_is_not_taken_for_dead_while_it_runs(
    jqm: JobQueueManager, backend: Backend, recovery_queue: str, workers: list[Worker], marks: Path
) -> None:
    # The other worker reconciles every half second all through the job: eight times or more.
    start_worker(_fast(backend), f"other-{recovery_queue}", workers)
    start_worker(_fast(backend, -TEN_MINUTES_S), recovery_queue, workers)
    job = jqm.enqueue("tests.record", args=[str(marks), "behind", 4.0], queue=recovery_queue)

    assert wait_job(jqm, job.id, timeout=60).status is JobStatus.DONE
    assert _stale(jqm, job.id) == 0
    assert labels(marks, "start") == ["behind"]


def test_a_dead_worker_whose_clock_was_ahead_is_taken_for_dead(
    jqm: JobQueueManager, backend: Backend, recovery_queue: str, workers: list[Worker], marks: Path
) -> None:
    ahead = start_worker(_fast(backend, TEN_MINUTES_S), recovery_queue, workers)
    job = jqm.enqueue("tests.record", args=[str(marks), "ahead", 3.0], queue=recovery_queue)
    wait_for(lambda: labels(marks, "start") == ["ahead"])
    ahead.kill()

    start_worker(_fast(backend), recovery_queue, workers)
    assert wait_job(jqm, job.id, timeout=60).status is JobStatus.DONE
    assert _stale(jqm, job.id) == 1
    assert labels(marks, "start") == ["ahead", "ahead"]
