"""A package's lone jobs store no result in the Celery result backend; their failures still do."""

from __future__ import annotations

from datetime import timedelta

from jqm_celery import Entry, JobQueueManager, JobStatus, OnError, Package, RunStatus


def test_a_lone_job_of_a_package_leaves_no_result_in_the_result_backend(
    jqm: JobQueueManager, name: str
) -> None:
    jqm.save(Package(name, entries=[Entry("tests.noop", run_order=10)]))
    run = jqm.run_now(name).wait(timeout=30)
    assert run.status is RunStatus.SUCCEEDED
    assert jqm.app.AsyncResult(run.jobs[0].celery_task_id).state == "PENDING"


def test_a_package_job_killed_by_its_hard_time_limit_is_an_error_and_the_run_goes_on(
    jqm: JobQueueManager, name: str
) -> None:
    jqm.save(
        Package(
            name,
            entries=[
                Entry("tests.sleep", args=[10.0], run_order=10, time_limit=timedelta(seconds=1)),
                Entry("tests.noop", run_order=20),
            ],
            on_error=OnError.CONTINUE,
        )
    )
    run = jqm.run_now(name).wait(timeout=30)
    killed, after = run.jobs
    assert killed.status is JobStatus.ERROR
    assert killed.error == "hard time limit of 1.0 s exceeded: the worker killed the job's process"
    assert after.status is JobStatus.DONE
    assert run.status is RunStatus.FAILED
