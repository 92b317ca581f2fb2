"""Packages run for real: a Celery worker, a broker and a store, on each of the three deployments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobQueueManager,
    JobStatus,
    LogKind,
    OnError,
    Package,
    PackageStatus,
    RetryPolicy,
    RunStatus,
    StateError,
)
from tests.integration.testapp import read_marks

FAST_RETRY = RetryPolicy(
    max_retries=3, base_delay=timedelta(milliseconds=200), max_delay=timedelta(seconds=1)
)


def _record(path: Path, label: str, run_order: int, sleep_s: float = 0.0) -> Entry:
    return Entry("tests.record", args=[str(path), label, sleep_s], run_order=run_order)


def _span(marks: list[dict[str, object]], label: str) -> tuple[float, float]:
    times = {m["event"]: m["t"] for m in marks if m["label"] == label}
    return float(times["start"]), float(times["end"])  # type: ignore[arg-type]


def test_entries_run_in_run_order_and_share_a_run_order_in_parallel(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                _record(marks, "first", 10),
                _record(marks, "left", 20, sleep_s=0.6),
                _record(marks, "right", 20, sleep_s=0.6),
                _record(marks, "last", 30),
            ],
        )
    )
    run = jqm.run_now(name).wait(timeout=60)

    assert run.status is RunStatus.SUCCEEDED
    spans = {label: _span(read_marks(marks), label) for label in ("first", "left", "right", "last")}
    assert spans["first"][1] <= min(spans["left"][0], spans["right"][0])
    assert max(spans["left"][1], spans["right"][1]) <= spans["last"][0]
    assert spans["left"][0] < spans["right"][1], "run order 20 ran in parallel"
    assert spans["right"][0] < spans["left"][1], "run order 20 ran in parallel"


def test_a_retried_job_keeps_its_place_and_logs_each_attempt_with_its_delay(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.flaky", args=[str(marks), "flaky", 2], run_order=10, retry=FAST_RETRY),
                _record(marks, "after", 20),
            ],
        )
    )
    run = jqm.run_now(name).wait(timeout=60)

    assert run.status is RunStatus.SUCCEEDED
    attempts = run.job("tests.flaky").attempts
    assert [(a.retry, a.status) for a in attempts] == [
        (0, AttemptStatus.FAILED),
        (1, AttemptStatus.FAILED),
        (2, AttemptStatus.DONE),
    ]
    assert [a.planned_delay for a in attempts] == [
        timedelta(milliseconds=200),
        timedelta(milliseconds=400),
        None,
    ]
    assert "simulated failure 1 of 2" in (attempts[0].error or "")
    calls = [m["t"] for m in read_marks(marks) if m["label"] == "flaky"]
    assert calls[1] - calls[0] >= 0.2
    assert calls[2] - calls[1] >= 0.4
    assert _span(read_marks(marks), "after")[0] > calls[2]
    assert run.job("tests.flaky").retry == 2


def test_retry_count_starts_at_zero_in_every_run(jqm: JobQueueManager, name: str, marks: Path) -> None:
    jqm.save(Package(name, entries=[Entry("tests.flaky", args=[str(marks), "f", 1], retry=FAST_RETRY)]))
    first = jqm.run_now(name).wait(timeout=60)
    second = jqm.run_now(name).wait(timeout=60)

    assert first.job("tests.flaky").retry == 1
    assert [a.retry for a in second.attempts] == [0]


def test_a_job_error_fails_the_job_without_retry_and_can_hide_its_traceback(
    jqm: JobQueueManager, name: str
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry(
                    "tests.fail_job", args=["customer file missing", False], retry=FAST_RETRY, run_order=10
                ),
                Entry("tests.fail_job", args=["with trace", True], run_order=20),
            ],
            on_error=OnError.CONTINUE,
        )
    )
    run = jqm.run_now(name).wait(timeout=60)

    hidden, shown = run.jobs
    assert [a.status for a in hidden.attempts] == [AttemptStatus.ERROR]
    assert hidden.attempts[0].error == "customer file missing"
    assert hidden.attempts[0].traceback is None
    assert "JobError" in (shown.attempts[0].traceback or "")


#: Each On Error policy: what becomes of the jobs after the one that failed for good, and of the package.
ON_ERROR_OUTCOMES = [
    (OnError.STOP, JobStatus.SKIPPED, PackageStatus.ERROR),
    (OnError.FINISH_THEN_STOP, JobStatus.DONE, PackageStatus.ERROR),
    (OnError.CONTINUE, JobStatus.DONE, PackageStatus.ACTIVE),
]


@pytest.mark.parametrize(("policy", "last_status", "package_status"), ON_ERROR_OUTCOMES)
def test_on_error_policy_decides_the_rest_of_the_run_and_the_package(
    jqm: JobQueueManager,
    name: str,
    marks: Path,
    policy: OnError,
    last_status: JobStatus,
    package_status: PackageStatus,
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.boom", args=["broken"], run_order=10),
                _record(marks, "after", 20),
            ],
            on_error=policy,
        )
    )
    jqm.activate(name)
    run = jqm.run_now(name).wait(timeout=60)

    assert run.status is RunStatus.FAILED
    assert run.job("tests.boom").status is JobStatus.ERROR
    assert run.job("tests.record").status is last_status
    assert jqm.package(name).status is package_status
    ran_after = any(m["label"] == "after" for m in read_marks(marks))
    assert ran_after is (last_status is JobStatus.DONE)
    stopped = [e for e in jqm.log_entries(package=name) if e.kind is LogKind.PACKAGE_STOPPED]
    assert len(stopped) == (1 if package_status is PackageStatus.ERROR else 0)


def test_hold_during_a_run_lets_the_running_job_finish_and_skips_the_rest(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(Package(name, entries=[_record(marks, "running", 10, sleep_s=2.0), _record(marks, "later", 20)]))
    jqm.activate(name)
    run = jqm.run_now(name)
    _wait_for(lambda: any(m["label"] == "running" for m in read_marks(marks)))
    jqm.hold(name)
    run = run.wait(timeout=60)

    assert run.status is RunStatus.STOPPED
    assert [j.status for j in run.jobs] == [JobStatus.DONE, JobStatus.SKIPPED]
    assert [m["label"] for m in read_marks(marks)] == ["running", "running"]
    kinds = [e.kind for e in jqm.log_entries(run_id=run.id)]
    assert LogKind.RUN_STOPPED_BY_HOLD in kinds
    assert LogKind.JOB_SKIPPED in kinds
    assert jqm.package(name).status is PackageStatus.ON_HOLD


def test_a_second_run_now_is_refused_while_one_is_in_flight_unless_queued(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(Package(name, entries=[_record(marks, "slow", 10, sleep_s=1.0)]))
    first = jqm.run_now(name)
    with pytest.raises(StateError, match="already has a run in flight"):
        jqm.run_now(name)
    queued = jqm.run_now(name, queue=True)
    assert queued.status is RunStatus.QUEUED

    first, queued = first.wait(timeout=60), queued.wait(timeout=60)
    assert first.status is RunStatus.SUCCEEDED
    assert queued.status is RunStatus.SUCCEEDED
    assert queued.started_at is not None
    assert first.finished_at is not None
    assert queued.started_at >= first.finished_at


def test_run_now_works_on_a_draft_and_does_not_change_its_status(jqm: JobQueueManager, name: str) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop")]))
    run = jqm.run_now(name).wait(timeout=60)
    assert run.status is RunStatus.SUCCEEDED
    assert jqm.package(name).status is PackageStatus.DRAFT


def test_every_attempt_is_logged_with_worker_task_id_and_aware_times(jqm: JobQueueManager, name: str) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop", run_order=5)]))
    run = jqm.run_now(name).wait(timeout=60)
    (attempt,) = run.attempts

    assert attempt.package == name
    assert attempt.run_id == run.id
    assert attempt.entry_task == "tests.noop"
    assert attempt.run_order == 5
    assert attempt.worker
    assert "@" in attempt.worker
    assert attempt.celery_task_id
    assert len(attempt.celery_task_id) == 36
    assert attempt.started_at.tzinfo is not None
    assert attempt.finished_at is not None
    assert attempt.finished_at >= attempt.started_at
    kinds = [e.kind for e in jqm.log_entries(run_id=run.id)]
    assert kinds == [LogKind.RUN_STARTED, LogKind.ATTEMPT, LogKind.RUN_FINISHED]


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
