"""jqm's own Celery tasks, registered on the user's app. Each one is thin: the runtime does the work."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from jqm_celery.compiler import FINISH_RUN_TASK, JOB_FAILED_TASK, JOB_TASK, flower_name
from jqm_celery.runtime import Runtime


def _job_shadow_name(task: Task, args: Any, kwargs: Any, options: Any) -> str | None:
    # Retries are sent again by Celery itself; this keeps their Flower name the same as the first attempt's.
    if isinstance(kwargs, dict) and "task" in kwargs:
        return flower_name(kwargs.get("package"), kwargs["task"])
    return None


def register_tasks(app: Celery, runtime: Runtime) -> dict[str, Task]:
    @app.task(
        name=JOB_TASK,
        bind=True,
        shared=False,
        acks_late=True,
        reject_on_worker_lost=True,
        serializer="json",
        max_retries=None,
        shadow_name=_job_shadow_name,
    )
    def job(
        self: Task,
        job_id: int,
        run_id: int | None = None,
        package: str | None = None,
        task: str | None = None,
    ) -> str:
        """One attempt of one jqm job (``run_id``, ``package`` and ``task`` are for Flower and logs)."""
        return runtime.execute_job(self, job_id)

    @app.task(name=FINISH_RUN_TASK, bind=True, shared=False, acks_late=True, serializer="json")
    def finish_run(self: Task, run_id: int) -> str | None:
        """Close a run once its last job has finished."""
        return runtime.finish_run(run_id)

    @app.task(name=JOB_FAILED_TASK, bind=True, shared=False, acks_late=True, serializer="json")
    def job_failed(
        self: Task, failed_task_id: str, job_id: int, run_id: int | None = None, run_order: int = 0
    ) -> None:
        """Error callback of a job whose wrapper died: records it and resumes the rest of the run."""
        runtime.job_failed(self, failed_task_id, job_id, run_id, run_order)

    return {JOB_TASK: job, FINISH_RUN_TASK: finish_run, JOB_FAILED_TASK: job_failed}
