"""Stand-alone jobs in queues, and the controls every job shares, run for real on a worker and a broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from jqm_celery import (
    AttemptStatus,
    Entry,
    JobQueueManager,
    JobStatus,
    LogKind,
    NotFoundError,
    OnError,
    Package,
    RetryPolicy,
    RunStatus,
    StateError,
    ValidationError,
)
from jqm_celery.records import Job
from tests.integration.testapp import read_marks

ONE_BACKEND = pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
FAST_RETRY = RetryPolicy(
    max_retries=3, base_delay=timedelta(milliseconds=200), max_delay=timedelta(seconds=1)
)
FINISHED = {JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED, JobStatus.ABORTED}


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def wait_job(jqm: JobQueueManager, job_id: int, timeout: float = 30.0) -> Job:
    wait_for(lambda: jqm.job(job_id).status in FINISHED, timeout)
    return jqm.job(job_id)


def labels(marks: Path, event: str) -> list[str]:
    return [str(m["label"]) for m in read_marks(marks) if m["event"] == event]


def test_a_stand_alone_job_runs_and_records_its_worker_and_attempt(jqm: JobQueueManager, marks: Path) -> None:
    job = jqm.enqueue("tests.record", args=[str(marks), "alone"], description="one job")
    assert job.status is JobStatus.QUEUED

    done = wait_job(jqm, job.id)
    assert done.status is JobStatus.DONE
    assert done.run_id is None
    assert done.description == "one job"
    assert done.worker
    assert "@" in done.worker
    assert [a.status for a in done.attempts] == [AttemptStatus.DONE]
    assert done.attempts[0].celery_task_id == job.celery_task_id
    assert labels(marks, "end") == ["alone"]


@ONE_BACKEND
def test_a_failing_job_is_retried_with_backoff_and_its_current_delay_recorded(
    jqm: JobQueueManager, marks: Path
) -> None:
    job = jqm.enqueue("tests.flaky", args=[str(marks), "flaky", 2], retry=FAST_RETRY)

    done = wait_job(jqm, job.id)
    assert done.status is JobStatus.DONE
    assert [(a.retry, a.status) for a in done.attempts] == [
        (0, AttemptStatus.FAILED),
        (1, AttemptStatus.FAILED),
        (2, AttemptStatus.DONE),
    ]
    assert (done.retry, done.max_retries) == (2, 3)
    assert done.current_delay == timedelta(milliseconds=400)


@ONE_BACKEND
def test_a_delayed_job_does_not_start_before_its_delay(jqm: JobQueueManager, marks: Path) -> None:
    sent = time.monotonic()
    job = jqm.enqueue("tests.record", args=[str(marks), "later"], delay=timedelta(seconds=1.5))
    assert jqm.job(job.id).status is JobStatus.DELAYED

    assert wait_job(jqm, job.id).status is JobStatus.DONE
    (start,) = [m["t"] for m in read_marks(marks) if m["event"] == "start"]
    assert float(start) - sent >= 1.4  # type: ignore[arg-type]


@ONE_BACKEND
def test_a_cancelled_delayed_job_never_runs(jqm: JobQueueManager, marks: Path) -> None:
    job = jqm.enqueue("tests.record", args=[str(marks), "never"], delay=timedelta(seconds=1))
    cancelled = jqm.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED

    time.sleep(2.0)  # the message's countdown has passed: a worker has had the chance to run it
    assert jqm.job(job.id).status is JobStatus.CANCELLED
    assert read_marks(marks) == []
    kinds = [e.kind for e in jqm.log_entries(job_id=job.id)]
    assert kinds == [LogKind.JOB_CANCELLED]


def test_abort_terminates_a_running_job_on_its_worker_and_it_does_not_run_again(
    jqm: JobQueueManager, marks: Path
) -> None:
    job = jqm.enqueue("tests.record", args=[str(marks), "long", 30.0])
    wait_for(lambda: labels(marks, "start") == ["long"])
    wait_for(lambda: jqm.job(job.id).status is JobStatus.RUNNING)

    aborted = jqm.abort(job.id)
    assert aborted.status is JobStatus.ABORTED
    assert [a.status for a in aborted.attempts] == [AttemptStatus.ABORTED]
    # The terminated process is not redelivered as a new attempt, and the worker carries on.
    after = jqm.enqueue("tests.record", args=[str(marks), "after"])
    assert wait_job(jqm, after.id).status is JobStatus.DONE
    time.sleep(1.0)
    assert labels(marks, "start") == ["long", "after"]
    assert labels(marks, "end") == ["after"]
    assert jqm.job(job.id).status is JobStatus.ABORTED
    assert len(jqm.job(job.id).attempts) == 1


@ONE_BACKEND
def test_requeue_runs_a_finished_job_again_with_a_fresh_retry_count_in_the_same_log(
    jqm: JobQueueManager, marks: Path
) -> None:
    job = jqm.enqueue("tests.flaky", args=[str(marks), "again", 1], retry=FAST_RETRY)
    first = wait_job(jqm, job.id)
    assert (first.status, first.retry) == (JobStatus.DONE, 1)

    requeued = jqm.requeue(job.id)
    assert requeued.status is JobStatus.QUEUED
    assert requeued.retry == 0
    second = wait_job(jqm, job.id)
    assert second.status is JobStatus.DONE
    assert [a.retry for a in second.attempts] == [0, 1, 0]
    assert second.celery_task_id != first.celery_task_id
    assert LogKind.JOB_REQUEUED in [e.kind for e in jqm.log_entries(job_id=job.id)]


@ONE_BACKEND
def test_cancel_run_aborts_the_running_job_skips_the_rest_and_stops_the_run(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.record", args=[str(marks), "running", 30.0], run_order=10),
                Entry("tests.record", args=[str(marks), "later"], run_order=20),
            ],
        )
    )
    run = jqm.run_now(name)
    wait_for(lambda: labels(marks, "start") == ["running"])
    wait_for(lambda: jqm.run(run.id).jobs[0].status is JobStatus.RUNNING)

    cancelled = jqm.cancel_run(run.id)
    assert cancelled.status is RunStatus.STOPPED
    assert [j.status for j in cancelled.jobs] == [JobStatus.ABORTED, JobStatus.SKIPPED]
    time.sleep(1.5)
    assert labels(marks, "start") == ["running"]
    assert labels(marks, "end") == []
    assert jqm.run(run.id).status is RunStatus.STOPPED
    assert LogKind.RUN_CANCELLED in [e.kind for e in jqm.log_entries(run_id=run.id)]


def test_aborting_the_running_job_of_a_package_run_lets_the_run_go_on_by_its_on_error_policy(
    jqm: JobQueueManager, name: str, marks: Path
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.record", args=[str(marks), "running", 30.0], run_order=10),
                Entry("tests.record", args=[str(marks), "later"], run_order=20),
            ],
            on_error=OnError.CONTINUE,
        )
    )
    run = jqm.run_now(name)
    wait_for(lambda: labels(marks, "start") == ["running"])
    wait_for(lambda: jqm.run(run.id).jobs[0].status is JobStatus.RUNNING)

    jqm.abort(run.jobs[0].id)
    finished = run.wait(timeout=60)
    assert finished.status is RunStatus.FAILED
    assert [j.status for j in finished.jobs] == [JobStatus.ABORTED, JobStatus.DONE]
    assert labels(marks, "end") == ["later"]


@ONE_BACKEND
def test_a_job_over_its_soft_time_limit_ends_as_error_without_retry(jqm: JobQueueManager) -> None:
    job = jqm.enqueue(
        "tests.sleep",
        args=[5.0],
        retry=FAST_RETRY,
        soft_time_limit=timedelta(seconds=0.5),
        time_limit=timedelta(seconds=3),
    )
    done = wait_job(jqm, job.id)
    assert done.status is JobStatus.ERROR
    assert done.error == "soft time limit of 0.5 s exceeded; raise the job's soft_time_limit"
    assert [a.status for a in done.attempts] == [AttemptStatus.ERROR]


def test_a_job_over_its_hard_time_limit_is_killed_and_ends_as_error(jqm: JobQueueManager) -> None:
    job = jqm.enqueue("tests.sleep", args=[10.0], time_limit=timedelta(seconds=1))
    done = wait_job(jqm, job.id)
    assert done.status is JobStatus.ERROR
    assert done.error == "hard time limit of 1.0 s exceeded: the worker killed the job's process"
    assert [a.status for a in done.attempts] == [AttemptStatus.ERROR]


@ONE_BACKEND
def test_a_job_for_a_task_the_worker_lacks_fails_with_the_closest_name(
    jqm: JobQueueManager, backend: object
) -> None:
    app = jqm.app
    if "tests.recrod" not in app.tasks:

        @app.task(shared=False, name="tests.recrod")
        def only_in_the_test_process() -> None:
            return None

    job = jqm.enqueue("tests.recrod")
    done = wait_job(jqm, job.id)
    assert done.status is JobStatus.ERROR
    assert "task 'tests.recrod' is not registered on worker" in (done.error or "")
    assert "did you mean 'tests.record'?" in (done.error or "")


@ONE_BACKEND
def test_jobs_and_queues_can_be_listed_by_queue_and_status(jqm: JobQueueManager) -> None:
    queue = f"q{time.monotonic_ns()}"
    state = jqm.define_queue(queue, pool_size=2)
    assert (state.name, state.pool_size, state.queued) == (queue, 2, 0)
    # Nothing consumes this queue: its jobs stay QUEUED or DELAYED.
    waiting = jqm.enqueue("tests.noop", queue=queue)
    delayed = jqm.enqueue("tests.noop", queue=queue, delay=timedelta(hours=1))

    (listed,) = [q for q in jqm.queues() if q.name == queue]
    assert (listed.queued, listed.delayed, listed.running) == (1, 1, 0)
    assert [j.id for j in jqm.jobs(queue=queue)] == [delayed.id, waiting.id]
    assert [j.id for j in jqm.jobs(queue=queue, status="delayed")] == [delayed.id]
    jqm.cancel(waiting.id)
    jqm.cancel(delayed.id)


@ONE_BACKEND
def test_clean_deletes_old_finished_jobs_and_their_log_entries_in_batches(jqm: JobQueueManager) -> None:
    jobs = [jqm.enqueue("tests.noop") for _ in range(5)]
    for job in jobs:
        wait_job(jqm, job.id)
    waiting = jqm.enqueue("tests.noop", delay=timedelta(hours=1))
    seen: list[tuple[int, int]] = []

    cleaned = jqm._job_queue.clean(
        timedelta(0), batch_size=2, progress=lambda done, total: seen.append((done, total))
    )

    assert cleaned.jobs >= 5
    assert cleaned.log_entries >= 5
    assert seen[0] == (0, seen[0][1])
    assert seen[-1][0] == cleaned.jobs
    assert len(seen) >= 4  # batches of two
    for job in jobs:
        with pytest.raises(NotFoundError):
            jqm.job(job.id)
    assert jqm.log_entries(job_id=jobs[0].id) == []
    assert jqm.job(waiting.id).status is JobStatus.DELAYED
    jqm.cancel(waiting.id)


@ONE_BACKEND
def test_the_audit_trail_records_who_did_what_to_packages_and_jobs(jqm: JobQueueManager, name: str) -> None:
    jqm.create(Package(name, entries=[Entry("tests.noop")]), actor="ann")
    jqm.save(Package(name, entries=[Entry("tests.noop")]), actor="ann")  # unchanged: not an edit
    jqm.save(Package(name, entries=[Entry("tests.noop", args=[1])]), actor="bob")
    jqm.activate(name, actor="bob")
    jqm.hold(name, actor="carl")
    jqm.delete(name, actor="carl")
    job = jqm.enqueue("tests.noop", delay=timedelta(hours=1))
    jqm.cancel(job.id, actor="dora")
    jqm.requeue(job.id, actor="dora")

    trail = [(e.actor, e.action, e.target) for e in jqm.audit(package=name)]
    assert trail == [
        ("ann", "CREATE", f"package '{name}'"),
        ("bob", "SAVE", f"package '{name}'"),
        ("bob", "ACTIVATE", f"package '{name}'"),
        ("carl", "HOLD", f"package '{name}'"),
        ("carl", "DELETE", f"package '{name}'"),
    ]
    recent = [(e.actor, e.action, e.target) for e in jqm.audit(limit=2)]
    assert recent == [("dora", "CANCEL", f"job {job.id}"), ("dora", "REQUEUE", f"job {job.id}")]
    wait_job(jqm, job.id)


# -- bad input: a clear error, and nothing changed ------------------------------------------


@ONE_BACKEND
def test_cancelling_a_finished_job_is_refused(jqm: JobQueueManager) -> None:
    job = wait_job(jqm, jqm.enqueue("tests.noop").id)
    with pytest.raises(StateError, match=rf"job {job.id} is DONE: only a QUEUED, DELAYED or RETRYING job"):
        jqm.cancel(job.id)
    assert jqm.job(job.id).status is JobStatus.DONE


@ONE_BACKEND
def test_aborting_a_job_that_is_not_running_is_refused(jqm: JobQueueManager) -> None:
    job = jqm.enqueue("tests.noop", delay=timedelta(hours=1))
    with pytest.raises(
        StateError, match=r"only a RUNNING job can be aborted; it has not started: jqm.cancel"
    ):
        jqm.abort(job.id)
    assert jqm.job(job.id).status is JobStatus.DELAYED
    jqm.cancel(job.id)


@ONE_BACKEND
def test_requeueing_a_running_job_is_refused(jqm: JobQueueManager, marks: Path) -> None:
    job = jqm.enqueue("tests.record", args=[str(marks), "busy", 2.0])
    wait_for(lambda: jqm.job(job.id).status is JobStatus.RUNNING)
    with pytest.raises(StateError, match=r"is RUNNING: only a DONE, CANCELLED, ABORTED or ERROR job"):
        jqm.requeue(job.id)
    assert wait_job(jqm, job.id).status is JobStatus.DONE
    assert labels(marks, "start") == ["busy"]


@ONE_BACKEND
def test_an_unknown_job_id_is_refused(jqm: JobQueueManager) -> None:
    for control in (jqm.job, jqm.cancel, jqm.abort, jqm.requeue):
        with pytest.raises(NotFoundError, match="job 987654 does not exist"):
            control(987654)


@ONE_BACKEND
def test_a_negative_delay_is_refused_and_nothing_is_stored(jqm: JobQueueManager) -> None:
    before = len(jqm.jobs(limit=10_000))
    with pytest.raises(ValidationError, match=r"delay must be ≥ 0, got -1 s"):
        jqm.enqueue("tests.noop", delay=timedelta(seconds=-1))
    assert len(jqm.jobs(limit=10_000)) == before


@ONE_BACKEND
def test_an_unknown_queue_is_refused_with_the_closest_name(jqm: JobQueueManager) -> None:
    jqm.define_queue("invoices", pool_size=1)
    with pytest.raises(ValidationError, match=r"queue 'invoice' is not defined; did you mean 'invoices'\?"):
        jqm.enqueue("tests.noop", queue="invoice")


@ONE_BACKEND
def test_an_unknown_task_is_refused_at_enqueue_with_the_closest_name(jqm: JobQueueManager) -> None:
    with pytest.raises(
        ValidationError, match=r"task 'tests.nop' is not registered; did you mean 'tests.noop'\?"
    ):
        jqm.enqueue("tests.nop")


@ONE_BACKEND
@pytest.mark.parametrize("pool_size", [0, -1, 1.5])
def test_a_pool_size_below_one_is_refused(jqm: JobQueueManager, pool_size: object) -> None:
    with pytest.raises(ValidationError, match=r"pool_size must be a whole number ≥ 1"):
        jqm.define_queue("tiny", pool_size=pool_size)  # type: ignore[arg-type]
    assert "tiny" not in [q.name for q in jqm.queues()]
