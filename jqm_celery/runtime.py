"""What happens on a worker: a job's attempt, its retry, the On Error policy, the end of a run.

The Celery tasks in ``tasks.py`` are thin and call in here. A failure of the user's task is data (an
attempt logged as FAILED or ERROR), never an exception that breaks the run's chain.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback as tb
from datetime import datetime
from typing import Any

from celery import Celery, Task
from celery._state import _task_stack
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from kombu.utils.uuid import uuid

from jqm_celery import handover
from jqm_celery.backoff import retry_delay
from jqm_celery.clock import Clock
from jqm_celery.compiler import NEXT_PART_STAGES, compile_run
from jqm_celery.definitions import RetryPolicy
from jqm_celery.errors import JobError, JQMError, did_you_mean
from jqm_celery.plans import ClaimedJob, RunPlan
from jqm_celery.statuses import AttemptStatus, JobStatus
from jqm_celery.store import Store

logger = logging.getLogger("jqm_celery")

_ERROR_MAX = 2000


class Runtime:
    def __init__(self, app: Celery, store: Store, clock: Clock, control_queue: str | None) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.control_queue = control_queue

    # -- sending ----------------------------------------------------------------------------

    def dispatch(self, plan: RunPlan, *, producer: Any = None) -> None:
        """Send the run's canvas; if the broker refuses, the run is recorded as FAILED and JQMError raised.

        ``producer``: the Kombu producer to send on (from ``publishing.publish_batch``); a chain's first
        message takes one from the app's pool all the same.
        """
        try:
            compile_run(self.app, plan, control_queue=self.control_queue).apply_async(producer=producer)
        except Exception as exc:
            message = f"could not send run {plan.run_id} of '{plan.package}' to the broker: {exc}"
            self.store.fail_dispatch(plan.run_id, self.clock.now(), message)
            raise JQMError(f"{message}; is the broker running and is broker_url right?") from exc

    # -- one attempt of one job -------------------------------------------------------------

    def execute_job(self, task: Task, job_id: int) -> str:
        request = task.request
        now = self.clock.now()
        claimed = self._claim(request, job_id, now)
        if not isinstance(claimed, ClaimedJob):
            return claimed
        user_task = self.app.tasks.get(claimed.task)
        if user_task is None:
            registered = [n for n in self.app.tasks if not n.startswith(("celery.", "jqm."))]
            error = (
                f"task '{claimed.task}' is not registered on worker {request.hostname}"
                f"{did_you_mean(claimed.task, registered)}; import its module in the worker's app"
            )
            logger.error("job %s: %s", job_id, error)
            return self._fail_for_good(claimed, error, None)
        try:
            _call(user_task, claimed.args, claimed.kwargs)
        except JobError as exc:
            return self._fail_for_good(claimed, exc.message, tb.format_exc() if exc.traceback else None)
        except SoftTimeLimitExceeded:
            # A job that ran out of time would most likely run out of time again: no retry.
            limit = (request.timelimit or (None, None))[1]
            error = f"soft time limit of {limit or '?'} s exceeded; raise the job's soft_time_limit"
            return self._fail_for_good(claimed, error, tb.format_exc())
        except Exception as exc:
            return self._failed_attempt(task, claimed, exc)
        self._end_done(request, claimed)
        return "DONE"

    def _claim(self, request: Any, job_id: int, now: datetime) -> ClaimedJob | str:
        """The job's attempt, started; or why it does not run ("SKIPPED", "NOT_RUN")."""
        handed = handover.received(request, job_id, now)
        if handed is not None:
            job, fresh = handed
            if fresh:
                return job
            started = self.store.start_handed_over(job, job.worker or "?", request.id, now)
            if started is JobStatus.RUNNING:
                return dataclasses.replace(job, worker=None, started_at=None)
            return "SKIPPED" if started is JobStatus.SKIPPED else "NOT_RUN"
        redelivered = bool((request.delivery_info or {}).get("redelivered"))
        claimed = self.store.claim_job(
            job_id, request.hostname or "?", request.id, now, redelivered=redelivered
        )
        if claimed is None:
            return "SKIPPED" if self.store.skip_if_stopped(job_id, now) else "NOT_RUN"
        return claimed

    def _end_done(self, request: Any, job: ClaimedJob) -> None:
        """End the attempt as DONE, handing the run over to the next job where it can (see handover)."""
        now = self.clock.now()
        step = None
        if self.store.writes_attempts_in_one_statement:
            step = handover.next_step(request, job.run_id)
        if step is None:
            self.store.end_attempt(job, now, AttemptStatus.DONE)
            return
        celery_task_id = uuid()
        following = self.store.hand_over(job, now, step["args"][0], celery_task_id)
        if following is not None:
            handover.attach(step, following, celery_task_id, now)

    def _failed_attempt(self, task: Task, claimed: ClaimedJob, exc: Exception) -> str:
        error = _describe(exc)
        trace = tb.format_exc()
        policy = RetryPolicy.from_dict(claimed.retry_policy) if claimed.retry_policy else None
        next_retry = claimed.retry + 1
        if policy is None or next_retry > policy.max_retries:
            return self._fail_for_good(claimed, error, trace)
        delay = retry_delay(policy, next_retry)
        self.store.end_attempt(
            claimed,
            self.clock.now(),
            AttemptStatus.FAILED,
            error=error,
            traceback=trace,
            planned_delay_s=delay.total_seconds(),
        )
        # Celery re-sends this very message (same chain, same chord) with a countdown: later entries of
        # the run wait for it, so the retry keeps the job's place.
        raise task.retry(countdown=delay.total_seconds(), max_retries=None, exc=None)

    def _fail_for_good(self, claimed: ClaimedJob, error: str, trace: str | None) -> str:
        now = self.clock.now()
        self.store.end_attempt(claimed, now, AttemptStatus.ERROR, error=error, traceback=trace)
        if claimed.run_id is not None:
            self.store.apply_error_policy(
                claimed.run_id, now, f"job {claimed.job_id} ({claimed.task}) failed: {error[:200]}"
            )
        return "ERROR"

    # -- the end of a run -------------------------------------------------------------------

    def finish_run(self, run_id: int) -> str | None:
        closed = self.store.close_run(run_id, self.clock.now())
        if closed is None:
            return None
        if closed.next_run_id is not None:
            plan = self.store.start_queued_run(closed.next_run_id, self.clock.now())
            if plan is not None:
                self.dispatch(plan)
        return closed.status

    def continue_run(self, run_id: int, after_run_order: int) -> None:
        """The previous part of a long run has finished: send the next one (see compiler.CHUNK_STAGES)."""
        self.dispatch(self.store.remaining_plan(run_id, after_run_order, stages=NEXT_PART_STAGES))

    def job_failed(
        self, task: Task, failed_task_id: str, job_id: int, run_id: int | None, run_order: int
    ) -> None:
        """The job's wrapper itself failed (hard time limit, lost database…): record it, resume the run."""
        if not getattr(task.request, "retries", 0):
            result: Any = self.app.AsyncResult(failed_task_id).result
            if isinstance(result, TimeLimitExceeded):
                limit = result.args[0] if result.args else "?"
                error = f"hard time limit of {limit} s exceeded: the worker killed the job's process"
            elif isinstance(result, BaseException):
                error = _describe(result)
            else:
                error = f"job task failed: {result!r}"
            failed = self.store.fail_job(job_id, self.clock.now(), error)
            if failed and run_id is not None:
                self.store.apply_error_policy(run_id, self.clock.now(), f"job {job_id} failed: {error[:200]}")
        if run_id is None:
            return
        if self.store.unsettled_jobs(run_id, run_order):
            # Siblings of the same run order are still running: the rest of the run must wait for them.
            raise task.retry(countdown=1.0, max_retries=3600)
        self.dispatch(self.store.remaining_plan(run_id, run_order, stages=NEXT_PART_STAGES))


def _call(user_task: Task, args: Any, kwargs: Any) -> Any:
    """Call the user's task in this process, as a direct call does (``self.request.called_directly``).

    Like Celery's own tracer, this runs ``run()`` unless the task class has a ``__call__`` of its own, which
    then runs instead: a request context built for each call costs more than a trivial task's work.
    """
    # Compared with Task.__call__ as it is now: a worker patches it (celery.app.trace), and a task class
    # that inherits the patched method has no __call__ of its own.
    if type(user_task).__call__ is not Task.__call__:
        return user_task(*args, **kwargs)
    _task_stack.push(user_task)
    try:
        return user_task.run(*args, **kwargs)
    finally:
        _task_stack.pop()


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_ERROR_MAX]
