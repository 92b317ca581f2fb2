"""``jqm demo``: the example package from ``examples/demo.py`` on a real worker, with no servers."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import shutil
from multiprocessing.synchronize import Event
from pathlib import Path

from jqm_celery.errors import NotFoundError
from jqm_celery.manager import JobQueueManager
from jqm_celery.records import Run
from jqm_celery.statuses import AttemptStatus, JobStatus

#: Seconds to wait for the demo's killed worker to be gone.
STOP_WAIT_S = 1.0

WORKER_ARGS = [
    "worker",
    "--pool=threads",
    "--concurrency=4",
    "--loglevel=WARNING",
    "--without-heartbeat",
    "--without-mingle",
    "--without-gossip",
]


def _worker_main(data_dir: str, go: Event) -> None:
    # Celery, the store and the demo's tasks are imported while the demo prepares its store (about a
    # second of the demo's wall time); the store is opened once it is ready.
    importlib.import_module("celery.apps.worker")
    from jqm_celery.examples.demo import make_app

    go.wait()
    # The worker's banner and log go to a file beside the store, not over the demo's output.
    log = os.open(Path(data_dir) / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    app = make_app(data_dir)
    JobQueueManager(app)
    app.worker_main(WORKER_ARGS)


class DemoWorker:
    """A real Celery worker in a child process (spawned, so it shares nothing with this one).

    ``start`` spawns it at once, to import what it runs while the store is prepared; it opens the store
    and consumes once ``store_ready`` is called.
    """

    def __init__(self, data_dir: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._go = context.Event()
        self._process = context.Process(
            target=_worker_main, args=(str(data_dir), self._go), name="jqm-demo-worker", daemon=True
        )

    def start(self) -> DemoWorker:
        self._process.start()
        return self

    def store_ready(self) -> None:
        self._go.set()

    def stop(self) -> None:
        # The run has finished and the worker holds nothing: a warm shutdown (a second or more) would
        # only make the user wait. SQLite's transactions are atomic, so killing it loses nothing.
        self._process.kill()
        self._process.join(STOP_WAIT_S)


def prepare(data_dir: Path) -> JobQueueManager:
    """A fresh demo store in ``data_dir`` with the demo package saved and activated."""
    from jqm_celery.examples.demo import PACKAGE, make_app

    shutil.rmtree(data_dir, ignore_errors=True)
    jqm = JobQueueManager(make_app(data_dir))
    jqm.save(PACKAGE)
    jqm.activate(PACKAGE.name)
    return jqm


def open_demo(data_dir: Path) -> JobQueueManager:
    """The manager of the demo store a previous ``jqm demo`` left in ``data_dir``."""
    from jqm_celery.examples.demo import make_app

    if not (data_dir / "jqm.sqlite").exists():
        raise NotFoundError(f"no demo data in {data_dir.resolve()}; run `jqm demo` first")
    return JobQueueManager(make_app(data_dir))


def check(run: Run) -> list[str]:
    """What did not go as the demo promises (empty when all is well)."""
    problems = []
    upload = run.job("demo.upload_to_bank")
    if [a.status for a in upload.attempts] != [AttemptStatus.FAILED, AttemptStatus.DONE]:
        problems.append("demo.upload_to_bank should fail once and succeed on its retry")
    notify, paid = run.job("demo.notify_finance"), run.job("demo.mark_paid")
    spans = (notify.started_at, notify.finished_at, paid.started_at, paid.finished_at)
    if None in spans or not (spans[0] < spans[3] and spans[2] < spans[1]):  # type: ignore[operator]
        problems.append("demo.notify_finance and demo.mark_paid should overlap")
    if run.job("demo.archive_pdfs").status is not JobStatus.ERROR:
        problems.append("demo.archive_pdfs should fail for good")
    if run.job("demo.close_period").status is not JobStatus.DONE:
        problems.append("demo.close_period should run after the failure (On Error: CONTINUE)")
    return problems
