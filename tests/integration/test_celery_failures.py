"""A job that failed for good is a failure in Celery's own terms: the task's state in the result backend,
the worker's log line and the task-failed event Flower shows; a job that will be retried is a Celery retry.

Each test runs on the embedded default, Redis + PostgreSQL and RabbitMQ + PostgreSQL (the ``backend``
fixture); the Flower test on the two brokers that carry events.
"""

from __future__ import annotations

import time
import urllib.error
from datetime import timedelta
from pathlib import Path

import pytest

from jqm_celery import Entry, JobQueueManager, JobStatus, OnError, Package, RetryPolicy, Run, RunStatus
from jqm_celery.errors import JobFailed
from tests.integration.conftest import Backend, Worker
from tests.integration.test_flower import _get, flower  # noqa: F401  (the fixture)
from tests.integration.test_jobqueue import wait_for

ONE_QUICK_RETRY = RetryPolicy(max_retries=1, base_delay=timedelta(milliseconds=100))


def _run(jqm: JobQueueManager, package: Package) -> Run:
    jqm.save(package)
    jqm.activate(package.name)
    return jqm.run_now(package.name).wait(timeout=60)


def _failing_then_next(name: str, policy: OnError = OnError.CONTINUE) -> Package:
    return Package(
        name,
        entries=[
            Entry("tests.boom", args=["bank down"], kwargs={}, run_order=10),
            Entry("tests.noop", args=[7], kwargs={"region": "eu"}, run_order=20),
        ],
        on_error=policy,
    )


def test_a_job_that_failed_for_good_ends_its_celery_task_as_failure_with_the_users_call(
    backend: Backend, jqm: JobQueueManager, name: str
) -> None:
    run = _run(jqm, _failing_then_next(name))

    assert [j.status for j in run.jobs] == [JobStatus.ERROR, JobStatus.DONE]
    task_id = run.jobs[0].celery_task_id
    result = backend.app().AsyncResult(task_id)
    assert result.state == "FAILURE"
    assert isinstance(result.result, JobFailed)
    assert "tests.boom('bank down') failed for good: ValueError: bank down" in str(result.result)


def test_the_worker_logs_a_job_that_failed_for_good_as_raised(
    jqm: JobQueueManager, worker: Worker, name: str
) -> None:
    run = _run(jqm, _failing_then_next(name))

    task_id = run.jobs[0].celery_task_id
    line = f"Task {name} › tests.boom[{task_id}] raised unexpected: JobFailed("
    wait_for(lambda: line in worker.log())
    assert f"[{task_id}] succeeded" not in worker.log()


def test_an_attempt_that_will_be_retried_is_a_celery_retry_not_a_failure(
    backend: Backend, jqm: JobQueueManager, worker: Worker, name: str, marks: Path
) -> None:
    flaky = Entry("tests.flaky", args=[str(marks), "flaky", 1], run_order=10, retry=ONE_QUICK_RETRY)
    run = _run(jqm, Package(name, entries=[flaky]))

    assert run.status is RunStatus.SUCCEEDED
    task_id = run.jobs[0].celery_task_id
    wait_for(lambda: f"[{task_id}] retry: Retry in" in worker.log())
    assert f"[{task_id}] raised" not in worker.log()
    assert backend.app().AsyncResult(task_id).state != "FAILURE"


@pytest.mark.parametrize("policy", [OnError.CONTINUE, OnError.FINISH_THEN_STOP, OnError.STOP])
def test_a_group_whose_job_fails_for_good_moves_the_run_on_once(
    jqm: JobQueueManager, name: str, policy: OnError
) -> None:
    package = Package(
        name,
        entries=[
            Entry("tests.boom", args=["in a group"], run_order=10),
            Entry("tests.noop", args=[1], run_order=10),
            Entry("tests.noop", args=[2], run_order=20),
            Entry("tests.noop", args=[3], run_order=30),
        ],
        on_error=policy,
    )
    run = _run(jqm, package)

    later = JobStatus.SKIPPED if policy is OnError.STOP else JobStatus.DONE
    assert run.status is RunStatus.FAILED
    statuses = [j.status for j in run.jobs]
    assert statuses[0] is JobStatus.ERROR
    assert statuses[2:] == [later, later]


@pytest.mark.parametrize("backend", ["redis-pg", "rabbitmq-pg"], indirect=True)
def test_flower_shows_a_job_that_failed_for_good_as_a_failure_with_its_exception_and_arguments(
    jqm: JobQueueManager,
    flower: str,  # noqa: F811  (the fixture imported above)
    name: str,
) -> None:
    run = _run(jqm, _failing_then_next(name))

    failed_id = run.jobs[0].celery_task_id
    deadline = time.monotonic() + 30
    while True:
        try:
            task = _get(f"{flower}/api/task/info/{failed_id}")
        except urllib.error.HTTPError:
            task = {}
        if task.get("state") == "FAILURE" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert task["state"] == "FAILURE"
    assert task["name"] == f"{name} › tests.boom"
    assert "tests.boom('bank down') failed for good" in task["exception"]
    assert task["args"] == "('bank down',)"
    assert task["kwargs"].startswith(f"{{'run_id': {run.id}, 'package': '{name}', 'task': 'tests.boom'")


@pytest.mark.parametrize("backend", ["redis-pg"], indirect=True)
def test_flower_shows_a_stand_alone_job_that_failed_for_good_with_its_arguments(
    jqm: JobQueueManager,
    flower: str,  # noqa: F811  (the fixture imported above)
) -> None:
    job = jqm.enqueue("tests.fail_job", args=["refused"], kwargs={"traceback": False})
    wait_for(lambda: jqm.job(job.id).status is JobStatus.ERROR)

    def shown() -> dict[str, str]:
        try:
            task: dict[str, str] = _get(f"{flower}/api/task/info/{job.celery_task_id}")
        except urllib.error.HTTPError:
            return {}
        return task if task.get("state") == "FAILURE" else {}

    wait_for(shown)
    task = shown()
    assert task["name"] == "jqm › tests.fail_job"
    assert task["args"] == "('refused',)"
    assert task["kwargs"] == f"{{'task': 'tests.fail_job', 'job_id': {job.id}, 'traceback': False}}"
