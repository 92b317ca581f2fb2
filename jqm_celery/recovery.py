"""Recovery after a restart or a lost message (the seed's InitializeQueueAndRecoverJobs): worker
heartbeats and a reconciler, which runs in every worker and in beat.

Jobs are acknowledged late, so the broker hands a killed worker's messages to another worker — RabbitMQ at
once, Redis only after its visibility timeout (an hour by default), the embedded SQLite broker never. The
reconciler covers all three: every worker records a heartbeat, and at start and then every interval it
looks for jobs marked RUNNING whose worker is gone (no heartbeat for three intervals, or restarted since
the attempt began) or whose hard time limit has long passed, and settles them — QUEUED again under a new
message id (a package job with the rest of its run), or ERROR once a job has lost its worker three times or
has run out of time. It also looks for waiting jobs whose message is gone (a broker restarted empty, a
worker killed holding a message it had not started, a countdown message lost): due for ``jqm_lost_after_s``
while nothing of their queue or run moved (``store/lost_jobs.py``); each is sent again under a new message
id. Each settled or re-sent job gets a ``JOB_STALE`` log entry. A duplicate of the old message is refused by
the job's claim, which only accepts the message id the job names. Liveness and lateness are measured by
the database's clock, so workers' clocks need not agree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, bootsteps

from jqm_celery.clock import Clock
from jqm_celery.compiler import ADVANCE_RUN_TASK
from jqm_celery.errors import ConfigError
from jqm_celery.jobqueue import JobQueue
from jqm_celery.runtime import Runtime
from jqm_celery.store.jobs import RunningJob

logger = logging.getLogger("jqm_celery.recovery")

INTERVAL_SETTING = "jqm_reconcile_interval_s"
DEFAULT_INTERVAL_S = 30.0
LOST_AFTER_SETTING = "jqm_lost_after_s"
DEFAULT_LOST_AFTER_S = 60.0
#: Lost jobs sent again per reconciliation at most (the rest by the next ones).
LOST_PER_RECONCILE = 500
#: A worker that has not beaten for this many intervals is gone.
STALE_AFTER_INTERVALS = 3
#: A job whose worker was lost this many times ends as ERROR instead of running again.
MAX_INTERRUPTIONS = 3
#: A job that a worker of the previous version claimed for the next job's message (its "hand-over") has
#: no worker until that message arrives; it counts as lost once no worker has named itself on it for
#: this long (seconds), or the stale window if that is longer.
UNNAMED_AFTER_S = 15.0


def reconcile_interval_s(conf: Any) -> float:
    return _seconds(conf, INTERVAL_SETTING, DEFAULT_INTERVAL_S)


def lost_after_s(conf: Any) -> float:
    return _seconds(conf, LOST_AFTER_SETTING, DEFAULT_LOST_AFTER_S)


def _seconds(conf: Any, setting: str, default: float) -> float:
    value = conf.get(setting)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{setting} must be a number of seconds > 0, got {value!r}; e.g. {default:g}")
    return float(value)


@dataclass(frozen=True)
class Reconciled:
    requeued: int = 0
    failed: int = 0
    #: Waiting jobs whose message was gone, sent again.
    resent: int = 0
    #: Runs whose jobs had all finished long ago, closed.
    closed: int = 0


class Reconciler:
    def __init__(self, app: Celery, job_queue: JobQueue, runtime: Runtime, clock: Clock) -> None:
        self.app = app
        self.job_queue = job_queue
        self.runtime = runtime
        self.clock = clock
        self.interval_s = reconcile_interval_s(app.conf)
        self.lost_after_s = lost_after_s(app.conf)
        #: Called after each reconciliation, in the worker's main process (run retention's daily check).
        self.chores: list[Callable[[], object]] = []

    def tick(self, hostname: str, started_at: datetime, consumer: Any = None) -> None:
        """One heartbeat (with the queues ``consumer`` consumes now) and one reconciliation; failures are
        logged, the worker carries on."""
        try:
            queues = _consumed_queues(consumer)
            self.job_queue.jobs_store.heartbeat(hostname, started_at, queues)
            self.reconcile_and_log(hostname)
            for chore in self.chores:
                chore()
        except Exception:
            logger.exception("jqm reconciler on %s failed; it tries again in %g s", hostname, self.interval_s)

    def reconcile_and_log(self, where: str) -> Reconciled:
        """One reconciliation, what it did logged (a worker's tick, beat's)."""
        done = self.reconcile()
        if done.requeued or done.failed:
            logger.warning(
                "jqm reconciler on %s: %d stale job(s) queued again, %d failed",
                where,
                done.requeued,
                done.failed,
            )
        if done.resent or done.closed:
            logger.warning(
                "jqm reconciler on %s: %d job(s) whose message was gone sent again, %d run(s) closed",
                where,
                done.resent,
                done.closed,
            )
        return done

    def reconcile(self) -> Reconciled:
        store = self.job_queue.jobs_store
        now = store.database_now()
        live = store.live_workers(timedelta(seconds=self.interval_s * STALE_AFTER_INTERVALS))
        requeued, failed = self._settle_stale(now, {name: w.started_at for name, w in live.items()})
        resent, closed = self._drive_lost(now, {queue for w in live.values() for queue in w.queues})
        return Reconciled(requeued, failed, resent, closed)

    def _settle_stale(self, now: datetime, alive: dict[str, datetime]) -> tuple[int, int]:
        store = self.job_queue.jobs_store
        requeued = failed = 0
        for job in store.running_jobs():
            out_of_time = self._out_of_time(job, now)
            gone = None if out_of_time else self._worker_gone(job, alive, now)
            if out_of_time is None and gone is None:
                continue
            if gone is not None and job.interruptions + 1 < MAX_INTERRUPTIONS:
                settled = store.settle_stale(job, now, gone, requeue_with=str(uuid.uuid4()))
                if not isinstance(settled, bool):
                    self.job_queue.send(settled)
                    requeued += 1
                continue
            reason = (
                out_of_time or f"{gone}; it lost its worker {MAX_INTERRUPTIONS} times, so it is not retried"
            )
            if store.settle_stale(job, now, reason, requeue_with=None) is True:
                failed += 1
                if job.run_id is not None:
                    self.runtime.store.apply_error_policy(
                        job.run_id, now, f"job {job.job_id} ({job.task}) failed: {reason[:200]}"
                    )
                    self.app.send_task(
                        ADVANCE_RUN_TASK, args=(job.run_id, job.run_order), queue=self.runtime.control_queue
                    )
        return requeued, failed

    def _drive_lost(self, now: datetime, consumed: set[str]) -> tuple[int, int]:
        """Send again the waiting jobs whose message is gone; close the runs no closing step ended."""
        store = self.job_queue.jobs_store
        lost = store.lost(
            now,
            timedelta(seconds=self.lost_after_s),
            consumed,
            self.job_queue.default_queue(),
            LOST_PER_RECONCILE,
        )
        resent = closed = 0
        for job in lost.jobs:
            where = f"queue '{job.queue}'" + (f" or run {job.run_id}" if job.run_id is not None else "")
            reason = (
                f"its message is gone: due since {job.due_at:%Y-%m-%d %H:%M:%S} UTC, and nothing in {where} "
                f"moved for {self.lost_after_s:g} s ({LOST_AFTER_SETTING}); sent again under a new message id"
            )
            message = store.send_lost_again(job, now, reason, str(uuid.uuid4()))
            if message is not None:
                self.job_queue.send(message)
                resent += 1
        for run_id in lost.unclosed_runs:
            if self.runtime.advance(None, run_id) is not None:
                closed += 1
        return resent, closed

    def _out_of_time(self, job: RunningJob, now: datetime) -> str | None:
        if job.time_limit_s is None or job.attempt_started_at is None:
            return None
        grace = timedelta(seconds=self.interval_s * STALE_AFTER_INTERVALS)
        if now < job.attempt_started_at + timedelta(seconds=job.time_limit_s) + grace:
            return None
        return (
            f"hard time limit of {job.time_limit_s:g} s exceeded and worker {job.worker} never reported the "
            "job; settled by the reconciler"
        )

    def _worker_gone(self, job: RunningJob, alive: dict[str, datetime], now: datetime) -> str | None:
        window = self.interval_s * STALE_AFTER_INTERVALS
        if job.worker is None:
            # Handed over by a worker of the previous version, and no worker has named itself on it since:
            # the worker it reached was lost within its first second, or the one that handed it over was
            # lost before its message was sent. A worker running it names itself well within this wait.
            wait = max(window, UNNAMED_AFTER_S)
            if job.attempt_started_at is None or now - job.attempt_started_at < timedelta(seconds=wait):
                return None
            return f"no worker reported running it within {wait:g} s of its hand-over"
        started = alive.get(job.worker)
        if started is None:
            return f"worker {job.worker} is gone (no heartbeat for {window:g} s)"
        if job.attempt_started_at is not None and job.attempt_started_at < started:
            return f"worker {job.worker} restarted while the job was running"
        return None


class ReconcileStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: a heartbeat and a reconciliation at start, then every interval."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_ref: Any = None

    def start(self, parent: Any) -> None:
        reconciler = getattr(getattr(parent.app, "jqm", None), "reconciler", None)
        if not isinstance(reconciler, Reconciler):
            return
        started_at = reconciler.clock.now()
        reconciler.tick(parent.hostname, started_at, parent)
        self.timer_ref = parent.timer.call_repeatedly(
            reconciler.interval_s, reconciler.tick, (parent.hostname, started_at, parent), priority=10
        )

    def stop(self, parent: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None


def _consumed_queues(consumer: Any) -> list[str]:
    """The names of the queues a worker's consumer consumes now (before it has started, those it will)."""
    task_consumer = getattr(consumer, "task_consumer", None)
    queues = getattr(task_consumer, "queues", None)
    if not queues and consumer is not None:
        queues = (consumer.app.amqp.queues.consume_from or {}).values()
    return sorted(str(q.name) for q in queues or ())


def install(app: Celery) -> None:
    """Register the bootstep on ``app`` (workers of this app only)."""
    app.steps["consumer"].add(ReconcileStep)
