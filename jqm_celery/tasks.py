"""jqm's own Celery tasks, registered on the user's app. Each one is thin: the runtime does the work."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from jqm_celery import result_waits
from jqm_celery.compiler import (
    ADVANCE_RUN_TASK,
    FORMER_ADVANCE_TASKS,
    JOB_FAILED_TASK,
    JOB_TASK,
    flower_name,
)
from jqm_celery.firing import DJANGO_TRIGGER, start_scheduled_run
from jqm_celery.runtime import Runtime
from jqm_celery.store.outages import OUTAGE_ERRORS, is_outage

#: Starts a run of a package by name; the task the django-celery-beat bridge schedules.
RUN_PACKAGE_TASK = "jqm.run_package"


#: jqm's bookkeeping tasks: acknowledged once done; a database outage retries them with backoff for about
#: ten minutes (a job's own claim and end retry in the store, see ``Runtime.execute_job``).
_BOOKKEEPING: dict[str, Any] = {
    "acks_late": True,
    "serializer": "json",
    "autoretry_for": OUTAGE_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 25,
}


def _job_shadow_name(task: Task, args: Any, kwargs: Any, options: Any) -> str | None:
    # Retries are sent again by Celery itself; this keeps their Flower name the same as the first attempt's.
    if isinstance(kwargs, dict) and "task" in kwargs:
        return flower_name(kwargs.get("package"), kwargs["task"])
    return None


def _mark_waits(task: Task, task_id: str, args: Any, kwargs: Any) -> None:
    """``before_start`` of ``jqm.job``: what the backend waits on before the job (``result_waits``)."""
    task.request.jqm_waits = result_waits.registered(task.backend)


def _let_go_of_waits(
    task: Task, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
) -> None:
    """``after_return`` of ``jqm.job``: let go of what Celery registered while it sent on what follows the
    job in its part (the chain's next step, a chord's body once its group has ended), as
    ``Runtime.dispatch`` does for the parts it sends."""
    result_waits.let_go(task.backend, getattr(task.request, "jqm_waits", None))


def register_tasks(app: Celery, runtime: Runtime) -> dict[str, Task]:
    @app.task(
        name=JOB_TASK,
        bind=True,
        shared=False,
        acks_late=True,
        reject_on_worker_lost=True,
        # Failures are stored even when a job's result is not: its error callback reads them.
        store_errors_even_if_ignored=True,
        serializer="json",
        max_retries=None,
        shadow_name=_job_shadow_name,
        before_start=_mark_waits,
        after_return=_let_go_of_waits,
    )
    def job(
        self: Task,
        job_id: int,
        run_id: int | None = None,
        package: str | None = None,
        task: str | None = None,
        closes_run: bool = False,
        continues_run: int | None = None,
        handed_over: dict[str, Any] | None = None,
        pending: dict[str, Any] | None = None,
    ) -> str:
        """One attempt of one jqm job (``run_id``, ``package`` and ``task`` are for Flower and logs).

        ``handed_over``: sent by the previous version, whose worker claimed this job for this message
        (see ``Store.start_handed_over``); the runtime reads it from the request. ``pending``: what a
        database outage left unwritten when this message was sent again (see ``Runtime.execute_job``).

        The last job of what was sent of a run, when alone in its stage, moves the run on itself once it
        has an outcome (``Runtime.advance``): ``closes_run`` (the run's last stage) ends the run,
        ``continues_run`` (its run order, the last of a part of a long run) sends the rest. A retry
        (``Retry`` raised) does neither. A job that failed for good raises ``JobFailed`` (a Celery
        failure), and its error callback moves the run on, as it does when the wrapper itself dies.
        """
        outcome = runtime.execute_job(self, job_id, pending)
        if run_id is not None and (closes_run or continues_run is not None):
            try:
                runtime.advance(None, run_id, continues_run)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                # The job's outcome is written: its run is moved on by a message of its own, retried.
                app.send_task(
                    ADVANCE_RUN_TASK,
                    args=(run_id, continues_run),
                    queue=runtime.control_queue,
                    countdown=1.0,
                )
        return outcome

    def advance_run(self: Task, run_id: int, after_run_order: int | None = None) -> str | None:
        """Move a run on: send its next part once what was sent has settled, or end it."""
        return runtime.advance(self, run_id, after_run_order)

    tasks: dict[str, Task] = {JOB_TASK: job}
    for name in (ADVANCE_RUN_TASK, *FORMER_ADVANCE_TASKS):
        tasks[name] = app.task(name=name, bind=True, shared=False, **_BOOKKEEPING)(advance_run)

    @app.task(name=JOB_FAILED_TASK, bind=True, shared=False, **_BOOKKEEPING)
    def job_failed(
        self: Task,
        failed_task_id: str,
        job_id: int,
        run_id: int | None = None,
        run_order: int = 0,
        advances: bool = True,
    ) -> None:
        """Error callback of a job: records a wrapper that died, and moves the run on (``advances``)."""
        runtime.job_failed(self, failed_task_id, job_id, run_id, run_order, advances=advances)

    @app.task(name=RUN_PACKAGE_TASK, shared=False, serializer="json")
    def run_package(name: str, trigger: str = DJANGO_TRIGGER) -> int | None:
        """Start a run of an ACTIVE package for an external scheduler such as django-celery-beat."""
        return start_scheduled_run(runtime, name, trigger)

    return {**tasks, JOB_FAILED_TASK: job_failed, RUN_PACKAGE_TASK: run_package}
