"""A job hands its run over to the next job: one database write per step of a run instead of two.

On PostgreSQL, when a job that is alone in its stage ends as DONE and the next step of its message's chain
is a job of the same run, also alone in its stage, the worker ends the job and claims the next one in one
statement (``Store.hand_over``), under a message id it chooses. It then writes that id and what the claim
returned into the next step's message, which Celery sends when the job's task returns. The worker that
receives it has nothing to write before it runs the job; it records its own name and the attempt's real
start when the attempt ends.

A handed-over job is RUNNING, with no worker, from the hand-over until its worker records itself. Three
things keep that state honest:

- A message that reaches its worker more than ``FRESH_S`` after the hand-over (it waited in a busy queue)
  is checked as a claim would be (``Store.start_handed_over``): if the run was stopped meanwhile, the job
  is skipped and its unstarted attempt leaves the log.
- A worker names itself on the jobs it has been running for ``REPORT_AFTER_S`` (``ReportStartStep``), so
  a long job shows its worker, and the reconciler can tell when that worker is lost.
- The reconciler queues again a handed-over job that no worker has named within its stale window, and
  at least ``UNNAMED_AFTER_S`` (the worker it reached was lost within the job's first second, or the
  worker that handed it over was lost before its message was sent). A late message of such a job is
  then refused: it is checked, and its message id is no longer the job's.

A retry, a redelivered message, a group, the last job of a part and every job on SQLite take the usual
path: a claim when the attempt starts and an end when it ends.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from celery import Celery, bootsteps
from celery.worker import state as worker_state

from jqm_celery.compiler import JOB_TASK
from jqm_celery.plans import ClaimedJob
from jqm_celery.store import Store

logger = logging.getLogger("jqm_celery")

#: The keyword argument of ``jqm.job`` that carries a hand-over.
HANDED_OVER = "handed_over"
#: A handed-over message received later than this (seconds) is checked before its job runs.
FRESH_S = 1.0
#: A worker names itself on a handed-over job once it has run this long (seconds)…
REPORT_AFTER_S = 1.0
#: …looking for such jobs this often (seconds).
REPORT_EVERY_S = 0.5
#: The reconciler waits at least this long (seconds) after a hand-over before it takes a job that no
#: worker has named for lost (its own stale window if that is longer).
UNNAMED_AFTER_S = 15.0


def next_step(request: Any, run_id: int | None) -> dict[str, Any] | None:
    """The next step of ``request``'s chain if it is a lone job of run ``run_id``, else None."""
    chain = request.chain
    if not chain or run_id is None:
        return None
    step = chain[-1]
    if not isinstance(step, dict) or step.get("task") != JOB_TASK:
        return None
    kwargs = step.get("kwargs")
    if not isinstance(kwargs, dict) or kwargs.get("run_id") != run_id:
        return None
    return step


def attach(step: dict[str, Any], job: ClaimedJob, celery_task_id: str, at: datetime) -> None:
    """Write the hand-over of ``job`` into the next step's signature, before Celery sends it.

    The message shows (in Flower and worker logs) the same arguments as any job's, without the hand-over,
    and Celery need not work them out with its saferepr, which would cost more than the rest of this.
    """
    options = step.setdefault("options", {})
    options["task_id"] = celery_task_id
    options["argsrepr"] = repr(tuple(step["args"]))
    options["kwargsrepr"] = repr(step["kwargs"])
    step["kwargs"][HANDED_OVER] = {
        "log_id": job.log_id,
        "task": job.task,
        "args": job.args,
        "kwargs": job.kwargs,
        "run_order": job.run_order,
        "retry": job.retry,
        "retry_policy": job.retry_policy,
        "at": at.timestamp(),
    }


def received(request: Any, job_id: int, now: datetime) -> tuple[ClaimedJob, bool] | None:
    """The job handed over in ``request``, and whether it arrived fresh; None if there is none to trust.

    A retry or a redelivery carries the first message's hand-over, which is spent: those claim as usual.
    """
    kwargs = request.kwargs or {}
    given = kwargs.get(HANDED_OVER)
    if not isinstance(given, dict) or request.retries:
        return None
    if (request.delivery_info or {}).get("redelivered"):
        return None
    job = ClaimedJob(
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
        worker=request.hostname or "?",
        started_at=now,
    )
    return job, now.timestamp() - float(given["at"]) <= FRESH_S


def report_starts(store: Store, hostname: str, reported: set[str], now: float | None = None) -> int:
    """Name this worker on the handed-over jobs it has run for ``REPORT_AFTER_S``; returns how many.

    ``reported``: message ids already named (kept between calls, pruned to the jobs still running).
    """
    now = time.time() if now is None else now
    running: set[str] = set()
    named = 0
    for request in list(worker_state.active_requests):
        # ``type``: the task's name (``task_name`` is the name it shows under, see flower_name).
        if request.type != JOB_TASK or not request.time_start:
            continue
        given = (request.kwargs or {}).get(HANDED_OVER)
        if not isinstance(given, dict):
            continue
        running.add(request.id)
        if request.id in reported or now - request.time_start < REPORT_AFTER_S:
            continue
        reported.add(request.id)
        started_at = datetime.fromtimestamp(request.time_start, UTC)
        job_id = request.args[0]
        if store.record_start(job_id, given["log_id"], request.id, request.hostname or hostname, started_at):
            named += 1
    reported.intersection_update(running)
    return named


class ReportStartStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: every ``REPORT_EVERY_S``, name this worker on its long handed-over jobs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_ref: Any = None
        self.reported: set[str] = set()

    def start(self, parent: Any) -> None:
        store = getattr(getattr(parent.app, "jqm", None), "store", None)
        if not isinstance(store, Store) or not store.writes_attempts_in_one_statement:
            return
        self.timer_ref = parent.timer.call_repeatedly(
            REPORT_EVERY_S, self._report, (store, parent.hostname), priority=10
        )

    def _report(self, store: Store, hostname: str) -> None:
        try:
            report_starts(store, hostname, self.reported)
        except Exception:
            logger.exception("jqm: naming worker %s on its running jobs failed; it tries again", hostname)

    def stop(self, parent: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None


def install(app: Celery) -> None:
    """Register the bootstep on ``app`` (workers of this app only)."""
    app.steps["consumer"].add(ReportStartStep)
