"""Sending jobs to the broker, and stopping them there: the job queue's side that talks to Celery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery, chain

from jqm_celery.clock import Clock
from jqm_celery.compiler import (
    ADVANCE_RUN_TASK,
    JOB_FAILED_TASK,
    JOB_TASK,
    call_reprs,
    flower_name,
    job_signature,
)
from jqm_celery.errors import JQMError
from jqm_celery.plans import JobPlan, RunPlan
from jqm_celery.publishing import publish_batch
from jqm_celery.runtime import Runtime
from jqm_celery.store.jobs import Aborted, JobMessage, JobStore


class JobSender:
    """Sends stand-alone (and recovered) jobs' messages; revokes and terminates them."""

    def __init__(self, app: Celery, runtime: Runtime, jobs_store: JobStore, clock: Clock) -> None:
        self.app = app
        self.runtime = runtime
        self.jobs_store = jobs_store
        self.clock = clock

    def send(self, message: JobMessage, *, countdown_s: float | None = None, producer: Any = None) -> None:
        """Send one job's message under its pre-assigned task id (so cancel and abort can revoke it)."""
        if message.run_id is not None and message.package is not None:
            # A recovered package job: the job, then the rest of its run once its run order has settled.
            plan = RunPlan(message.run_id, message.package, (_job_plan(message),))
            signature = job_signature(self.app, plan, plan.jobs[0], control_queue=self.runtime.control_queue)
            signature.set(task_id=message.celery_task_id)
            resume = self.app.signature(
                ADVANCE_RUN_TASK,
                args=(message.run_id, message.run_order),
                immutable=True,
                queue=self.runtime.control_queue,
            )
            chain(signature, resume).apply_async(producer=producer)
            return
        options: dict[str, Any] = {}
        if message.soft_time_limit_s is not None:
            options["soft_time_limit"] = message.soft_time_limit_s
        if message.time_limit_s is not None:
            options["time_limit"] = message.time_limit_s
        args, kwargs = (message.job_id,), {"task": message.task}
        self.app.send_task(
            JOB_TASK,
            args=args,
            kwargs=kwargs,
            # The user's call, given, so that Celery does not work out reprs with its saferepr (see
            # compiler.compile_run).
            **call_reprs(_job_plan(message), kwargs),
            task_id=message.celery_task_id,
            queue=message.queue,
            countdown=countdown_s,
            shadow=flower_name(None, message.task),
            producer=producer,
            # The job's row is its result: storing "DONE" as well costs the worker two round trips to the
            # result backend (and the sender a subscription to it). A failure is still stored, for the
            # error callback (jqm.job stores errors even when its result is ignored).
            ignore_result=True,
            link_error=self.app.signature(
                JOB_FAILED_TASK, kwargs={"job_id": message.job_id}, queue=self.runtime.control_queue
            ),
            **options,
        )

    def send_all(self, messages: Sequence[JobMessage], *, countdown_s: float | None) -> None:
        # One batch: the messages and their task-sent events reach the broker together when it closes, so
        # if anything fails before that, none of them counts as sent.
        try:
            # Only a recovered package job is sent as a chain (then at once, outside the batch).
            with publish_batch(self.app, chains=False) as producer:
                for message in messages:
                    self.send(message, countdown_s=countdown_s, producer=producer)
        except Exception as exc:
            error = f"could not send the job to the broker: {exc}"
            self.jobs_store.fail_unsent([m.job_id for m in messages], self.clock.now(), error)
            raise JQMError(
                f"{len(messages)} job(s) could not be sent to the broker ({exc}); they are recorded as "
                "ERROR; is the broker running and is broker_url right?"
            ) from exc

    def revoke(self, celery_task_id: str, *, terminate: bool) -> None:
        # SIGKILL: a task that catches or ignores SIGTERM must still stop.
        self.app.control.revoke(celery_task_id, terminate=terminate, signal="SIGKILL")

    def terminate(self, aborted: Sequence[Aborted], actor: str) -> None:
        for job in aborted:
            if job.celery_task_id:
                self.revoke(job.celery_task_id, terminate=True)
            if job.run_id is not None:
                self.runtime.store.apply_error_policy(
                    job.run_id, self.clock.now(), f"job {job.job_id} ({job.task}) aborted by {actor}"
                )
                # A terminated task ends its chain (and its chord) without calling its error callback:
                # the callback's task is sent here so the rest of the run goes on, or is closed.
                self.app.signature(
                    JOB_FAILED_TASK,
                    args=(job.celery_task_id or "",),
                    kwargs={"job_id": job.job_id, "run_id": job.run_id, "run_order": job.run_order},
                    **({"queue": self.runtime.control_queue} if self.runtime.control_queue else {}),
                ).apply_async()


def _job_plan(message: JobMessage) -> JobPlan:
    return JobPlan(
        message.job_id,
        message.task,
        message.run_order,
        message.queue,
        message.soft_time_limit_s,
        message.time_limit_s,
        message.args,
        message.kwargs,
    )
