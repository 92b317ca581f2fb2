"""Queue control, as in the Mendix module: pause a queue (no new job of it starts; running jobs finish;
waiting jobs stay waiting), resume it (its refused jobs are sent again), or shut it down by force (paused,
and its running jobs aborted). ``JobQueueManager`` delegates here; the store side is
``store/queue_control.py``, and the claim that refuses a paused queue's jobs is ``store/statements.py``.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from jqm_celery.errors import StateError
from jqm_celery.jobqueue import JobQueue, default_actor
from jqm_celery.queue_records import AuditAction, QueueState
from jqm_celery.store.jobs import Aborted
from jqm_celery.store.queue_control import QueueControlStore


class QueueControl:
    def __init__(self, job_queue: JobQueue, heartbeat_window: timedelta) -> None:
        self.job_queue = job_queue
        self.store = QueueControlStore(job_queue.jobs_store.store)
        #: A worker whose last heartbeat is older than this is not counted as consuming a queue.
        self.heartbeat_window = heartbeat_window

    def pause(self, name: str, *, actor: str | None = None) -> QueueState:
        """No new job of the queue starts, on any worker; running jobs finish; waiting jobs stay waiting."""
        self.store.pause(name, self.job_queue.clock.now(), actor or default_actor(), AuditAction.PAUSE_QUEUE)
        return self.queue(name)

    def resume(self, name: str, *, actor: str | None = None) -> QueueState:
        """Jobs of the queue start again; those refused while it was paused are sent again, oldest first."""
        now = self.job_queue.clock.now()
        messages = self.store.resume(name, now, actor or default_actor(), lambda: str(uuid.uuid4()))
        if messages:
            self.job_queue.sender.send_all(messages, countdown_s=None)
        return self.queue(name)

    def shut_down(self, name: str, *, actor: str | None = None) -> QueueState:
        """Pause the queue and abort its running jobs (each terminated on its worker)."""
        actor = actor or default_actor()
        now = self.job_queue.clock.now()
        self.store.pause(name, now, actor, AuditAction.SHUT_DOWN_QUEUE, "paused; running jobs aborted")
        aborted: list[Aborted] = []
        # Read after the pause has committed: no job of the queue can be claimed any more.
        for job_id in self.store.running_jobs(name):
            try:
                aborted.append(self.job_queue.jobs_store.abort(job_id, now, actor))
            except StateError:
                continue  # it finished meanwhile
        self.job_queue.sender.terminate(aborted, actor)
        return self.queue(name)

    def queues(self) -> list[QueueState]:
        """Every queue with its pool size, paused state, job counts, and the live workers consuming it."""
        consumers: dict[str, list[str]] = {}
        for hostname, worker in self.job_queue.jobs_store.live_workers(self.heartbeat_window).items():
            for queue in worker.queues:
                consumers.setdefault(queue, []).append(hostname)
        return [
            dataclasses.replace(q, workers=tuple(consumers.get(q.name, ()))) for q in self.job_queue.queues()
        ]

    def queue(self, name: str) -> QueueState:
        return next(q for q in self.queues() if q.name == name)
