"""What happens on a worker: a job's attempt, its retry, the On Error policy, the end of a run.

The Celery tasks in ``tasks.py`` are thin and call in here. A failure of the user's task is data first
(an attempt logged as FAILED or ERROR). An attempt that will be retried is a Celery retry; a job that has
failed for good is then a Celery failure too (``JobFailed``), whose error callback moves the run on.
"""

from __future__ import annotations

import dataclasses
import logging
import reprlib
import traceback as tb
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from celery import Celery, Task
from celery._state import _task_stack
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from jqm_celery import result_waits
from jqm_celery.backoff import retry_delay
from jqm_celery.clock import Clock
from jqm_celery.compiler import ADVANCE_RUN_TASK, HANDED_OVER, NEXT_PART_STAGES, compile_run
from jqm_celery.definitions import RetryPolicy
from jqm_celery.errors import JobError, JobFailed, JQMError, did_you_mean
from jqm_celery.job_context import JobContext, running
from jqm_celery.plans import ClaimedJob, RunPlan
from jqm_celery.statuses import AttemptStatus, JobStatus
from jqm_celery.store import Store
from jqm_celery.store.outages import StoreUnavailable

logger = logging.getLogger("jqm_celery")

_ERROR_MAX = 2000
#: The keyword argument of ``jqm.job`` that carries what a database outage left unwritten.
PENDING = "pending"


class Runtime:
    def __init__(
        self,
        app: Celery,
        store: Store,
        clock: Clock,
        control_queue: str | None,
        *,
        skip_retry_delays: bool = False,
    ) -> None:
        self.app = app
        self.store = store
        self.clock = clock
        self.control_queue = control_queue
        #: Retry at once, the delay recorded but not waited for (``jqm_retry_delays="skip"``, for tests).
        self.skip_retry_delays = skip_retry_delays

    # -- sending ----------------------------------------------------------------------------

    def dispatch(self, plan: RunPlan, *, producer: Any = None) -> None:
        """Send the run's canvas; if the broker refuses, the run is recorded as FAILED and JQMError raised.

        ``producer``: the Kombu producer to send on (from ``publishing.publish_batch``); a chain's first
        message takes one from the app's pool all the same.
        """
        try:
            with result_waits.waiting_on_none(self.app.backend):
                compile_run(self.app, plan, control_queue=self.control_queue).apply_async(producer=producer)
        except Exception as exc:
            message = f"could not send run {plan.run_id} of '{plan.package}' to the broker: {exc}"
            following = self.store.fail_dispatch(plan.run_id, self.clock.now(), message)
            if following is not None:
                # The failed run's end started the package's next queued run; it is sent (or fails) too.
                try:
                    self.dispatch(following, producer=producer)
                except JQMError as next_exc:
                    logger.error("%s", next_exc)
            raise JQMError(f"{message}; is the broker running and is broker_url right?") from exc

    # -- one attempt of one job -------------------------------------------------------------

    def execute_job(self, task: Task, job_id: int, pending: dict[str, Any] | None = None) -> str:
        """One attempt: "DONE", or why it did not run ("SKIPPED", "NOT_RUN").

        Raises ``Retry`` when the attempt failed and will be retried, ``JobFailed`` when the job has failed
        for good (recorded, and the On Error policy applied, before it is raised).

        A database outage longer than the store's retry time (``jqm_store_retry_s``) does not lose the
        job: its message is sent again for later (a Celery retry) carrying what is still to be written,
        ``pending``: ``{"claim": True}`` (claim again) or ``{"end": …}`` (the end of an attempt whose
        body returned, written before anything else; the body does not run again).
        """
        if pending is not None and "end" in pending:
            return self._write_pending_end(task, pending["end"])
        request = task.request
        now = self.clock.now()
        try:
            claimed = self._claim(request, job_id, now, claim_again=pending is not None)
        except StoreUnavailable as exc:
            self._keep_message(task, {"claim": True}, exc)
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
            self._fail_for_good(task, claimed, error, None)
        try:
            with running(_context(claimed)):
                _call(user_task, claimed.args, claimed.kwargs)
        except JobError as exc:
            self._fail_for_good(task, claimed, exc.message, tb.format_exc() if exc.traceback else None)
        except SoftTimeLimitExceeded:
            # A job that ran out of time would most likely run out of time again: no retry.
            limit = (request.timelimit or (None, None))[1]
            error = f"soft time limit of {limit or '?'} s exceeded; raise the job's soft_time_limit"
            self._fail_for_good(task, claimed, error, tb.format_exc())
        except Exception as exc:
            self._failed_attempt(task, claimed, exc)
        self._write_end(task, _Ending(claimed, AttemptStatus.DONE, self.clock.now()))
        return "DONE"

    def _claim(
        self, request: Any, job_id: int, now: datetime, *, claim_again: bool = False
    ) -> ClaimedJob | str:
        """The job's attempt, started; or why it does not run ("SKIPPED", "NOT_RUN").

        ``claim_again``: the message was sent again after a claim that may have landed: it takes its
        own RUNNING job over, as a redelivered message does.
        """
        handed = _handed_over(request, job_id)
        if handed is not None:
            started = self.store.start_handed_over(handed, request.hostname or "?", request.id, now)
            if started is JobStatus.RUNNING:
                return handed
            return "SKIPPED" if started is JobStatus.SKIPPED else "NOT_RUN"
        redelivered = claim_again or bool((request.delivery_info or {}).get("redelivered"))
        claimed = self.store.claim_job(
            job_id, request.hostname or "?", request.id, now, redelivered=redelivered
        )
        if claimed is None:
            if self.store.defer_if_paused(job_id, request.id, now):
                return "PAUSED"
            if self.store.skip_if_stopped(job_id, now):
                return "SKIPPED"
            # Its queue may have been resumed between the claim and the look at the queue: claim again.
            claimed = self.store.claim_job(
                job_id, request.hostname or "?", request.id, now, redelivered=redelivered
            )
        return "NOT_RUN" if claimed is None else claimed

    def _failed_attempt(self, task: Task, claimed: ClaimedJob, exc: Exception) -> NoReturn:
        error = _describe(exc)
        trace = tb.format_exc()
        policy = RetryPolicy.from_dict(claimed.retry_policy) if claimed.retry_policy else None
        next_retry = claimed.retry + 1
        if policy is None or next_retry > policy.max_retries:
            self._fail_for_good(task, claimed, error, trace)
        delay_s = retry_delay(policy, next_retry).total_seconds()
        failed = _Ending(claimed, AttemptStatus.FAILED, self.clock.now(), error, trace, delay_s)
        self._write_end(task, failed)
        self._retry_job(task, failed)

    def _fail_for_good(self, task: Task, claimed: ClaimedJob, error: str, trace: str | None) -> NoReturn:
        """Record the job as failed for good and apply the On Error policy; then fail the Celery task.

        The task's failure is for Celery's own views (its state, the task-failed event, the worker log);
        the store already holds the job's outcome, and the task's error callback (``job_failed``) moves
        the run on, as Celery sends no further step of a chain after a failed one.
        """
        ending = _Ending(claimed, AttemptStatus.ERROR, self.clock.now(), error, trace)
        self._write_end(task, ending)
        self._failed_for_good(ending)

    def _write_end(self, task: Task, ending: _Ending) -> None:
        """Write an attempt's end. If the database stays out for longer than the store's retry time, the
        end is kept in the job's message, sent again for later (``execute_job``'s ``pending``)."""
        try:
            self.store.end_attempt(
                ending.job,
                ending.at,
                ending.outcome,
                error=ending.error,
                traceback=ending.traceback,
                planned_delay_s=ending.planned_delay_s,
            )
        except StoreUnavailable as exc:
            self._keep_message(task, {"end": ending.to_message()}, exc)

    def _write_pending_end(self, task: Task, end: dict[str, Any]) -> str:
        """The end kept in the message, written; then what follows an end of its outcome."""
        ending = _Ending.from_message(end)
        self._write_end(task, ending)
        if ending.outcome is AttemptStatus.FAILED:
            self._retry_job(task, ending)
        if ending.outcome is AttemptStatus.ERROR:
            self._failed_for_good(ending)
        return "DONE"

    def _retry_job(self, task: Task, failed: _Ending) -> NoReturn:
        """After a FAILED attempt's end: Celery re-sends this very message (same chain, same chord) with
        a countdown, so later entries of the run wait for it and the retry keeps the job's place."""
        countdown_s = 0.0 if self.skip_retry_delays else (failed.planned_delay_s or 0.0)
        raise task.retry(countdown=countdown_s, max_retries=None, exc=None, **_resent(task, pending=None))

    def _failed_for_good(self, ending: _Ending) -> NoReturn:
        """After an ERROR attempt's end: the On Error policy, then ``JobFailed``."""
        claimed, error = ending.job, ending.error or ""
        if claimed.run_id is not None:
            self.store.apply_error_policy(
                claimed.run_id, ending.at, f"job {claimed.job_id} ({claimed.task}) failed: {error[:200]}"
            )
        raise JobFailed(f"{_call_text(claimed)} failed for good: {error}")

    def _keep_message(self, task: Task, pending: dict[str, Any], exc: StoreUnavailable) -> NoReturn:
        """Send the job's message again for later, with what is still to be written (``pending``)."""
        countdown_s = min(self.store.retry_s, _KEEP_COUNTDOWN_MAX_S)
        logger.error("jqm: %s; the job's message is sent again in %g s", exc, countdown_s)
        raise task.retry(countdown=countdown_s, max_retries=None, exc=None, **_resent(task, pending=pending))

    # -- moving a run on ---------------------------------------------------------------------

    def advance(self, task: Task | None, run_id: int, after_run_order: int | None = None) -> str | None:
        """Move a run on once what was sent of it has settled: send its next part, or end it.

        ``after_run_order``: the last run order sent so far (None: the whole run was sent). Unfinished jobs
        up to it (the siblings of a job whose wrapper died, a recovered job) are waited for: ``task`` is
        retried, or without one (a job taking the step on itself) a ``jqm.advance_run`` message waits.
        Returns the run's final status if this ended it. The end starts the package's next queued run,
        which is sent here.
        """
        if after_run_order is not None:
            if self.store.unsettled_jobs(run_id, after_run_order):
                if task is None:
                    self.app.send_task(
                        ADVANCE_RUN_TASK, args=(run_id, after_run_order), queue=self.control_queue
                    )
                    return None
                raise task.retry(countdown=1.0, max_retries=3600)
            rest = self.store.remaining_plan(run_id, after_run_order, stages=NEXT_PART_STAGES)
            if rest.jobs:
                self.dispatch(rest)
                return None
        closed = self.store.close_run(run_id, self.clock.now())
        if closed is None:
            return None
        if closed.next_run is not None:
            self.dispatch(closed.next_run)
        return closed.status

    def job_failed(
        self,
        task: Task,
        failed_task_id: str,
        job_id: int,
        run_id: int | None,
        run_order: int,
        *,
        advances: bool = True,
    ) -> None:
        """The job's task failed: move the run on; if its wrapper itself died (hard time limit, lost
        database…) rather than recording the job as failed for good, record that first.

        ``advances``: False for a job in a group, whose chord's error callback moves the run on once.
        """
        # A job that failed for good raised JobFailed once its failure was recorded: nothing to add. A
        # retry of this task (after a database outage) records it again: fail_job leaves a settled job be.
        result: Any = self.app.AsyncResult(failed_task_id).result
        if not isinstance(result, JobFailed):
            self._record_dead_wrapper(job_id, run_id, result)
        if run_id is not None and advances:
            self.advance(task, run_id, run_order)

    def _record_dead_wrapper(self, job_id: int, run_id: int | None, result: Any) -> None:
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


def _handed_over(request: Any, job_id: int) -> ClaimedJob | None:
    """The job a worker of the previous version claimed for this message (its "hand-over"), if any.

    A retry or a redelivery carries the first message's hand-over, which is spent: those claim as usual.
    """
    kwargs = request.kwargs or {}
    given = kwargs.get(HANDED_OVER)
    if not isinstance(given, dict) or request.retries:
        return None
    if (request.delivery_info or {}).get("redelivered"):
        return None
    return ClaimedJob(
        job_id=job_id,
        run_id=kwargs.get("run_id"),
        log_id=given["log_id"],
        package=kwargs.get("package"),
        task=given["task"],
        args=list(given["args"]),
        kwargs=dict(given["kwargs"]),
        run_order=given["run_order"],
        retry=given["retry"],
        retry_policy=dict(given["retry_policy"]),
    )


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


def _call_text(claimed: ClaimedJob) -> str:
    """The user's call, ``task(1, region='eu')``, its arguments shortened as Celery's own reprs are."""
    arguments = [reprlib.repr(a) for a in claimed.args]
    arguments += [f"{k}={reprlib.repr(v)}" for k, v in claimed.kwargs.items()]
    return f"{claimed.task}({', '.join(arguments)})"


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_ERROR_MAX]


#: The longest wait before a job's message kept through a database outage is tried again.
_KEEP_COUNTDOWN_MAX_S = 30.0


@dataclass(frozen=True)
class _Ending:
    """An attempt's end, to be written: kept in the job's message while the database is out."""

    job: ClaimedJob
    outcome: AttemptStatus
    at: datetime
    error: str | None = None
    traceback: str | None = None
    planned_delay_s: float | None = None

    def to_message(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        return {**values, "outcome": self.outcome.value, "at": self.at.isoformat()}

    @classmethod
    def from_message(cls, values: dict[str, Any]) -> _Ending:
        return cls(
            job=ClaimedJob(**values["job"]),
            outcome=AttemptStatus(values["outcome"]),
            at=datetime.fromisoformat(values["at"]),
            error=values.get("error"),
            traceback=values.get("traceback"),
            planned_delay_s=values.get("planned_delay_s"),
        )


def _resent(task: Task, *, pending: dict[str, Any] | None) -> dict[str, Any]:
    """``task.retry``'s arguments that re-send the job's message as it was, with ``pending`` (or none);
    the message shows the same arguments as the first (the user's call, see call_reprs)."""
    kwargs = {k: v for k, v in (task.request.kwargs or {}).items() if k != PENDING}
    if pending is not None:
        kwargs[PENDING] = pending
    reprs = {key: getattr(task.request, key, None) for key in ("argsrepr", "kwargsrepr")}
    return {"args": task.request.args, "kwargs": kwargs, **reprs}


def _context(claimed: ClaimedJob) -> JobContext:
    return JobContext(
        job_id=claimed.job_id,
        run_id=claimed.run_id,
        package=claimed.package,
        task=claimed.task,
        retry=claimed.retry,
        attempt_id=claimed.log_id,
    )
