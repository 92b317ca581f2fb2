"""Run a package to completion in your own unit tests, without a broker or a database server.

``run_package`` saves the package in a temporary embedded store (SQLite files), starts a real Celery
worker in a thread of the test process on the embedded broker, runs the package once and returns the
finished run. The jobs go through the same runtime as in production: claims, retries, the On Error
policy, the end of the run. Only the retry delays can be skipped, and only when asked for::

    from jqm_celery.testing import run_package

    def test_billing_stops_when_the_upload_fails():
        run = run_package(billing_package(), tasks=[export_invoices, upload_to_bank], retry_delays="skip")
        assert run.status is RunStatus.FAILED
        assert [job.status for job in run.jobs] == [JobStatus.DONE, JobStatus.ERROR]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

from celery import Celery, Task
from celery.contrib.testing.worker import start_worker

from jqm_celery.definitions import Package
from jqm_celery.embedded import embedded_conf
from jqm_celery.errors import ValidationError
from jqm_celery.manager import JobQueueManager
from jqm_celery.records import Run

#: What ``tasks=`` takes: Celery tasks (decorated functions), or a mapping of task names to callables.
Tasks = Iterable[Task] | Mapping[str, Callable[..., Any]]


def run_package(
    package: Package,
    *,
    tasks: Tasks,
    retry_delays: Literal["real", "skip"] = "real",
    timeout: timedelta = timedelta(seconds=60),
    data_dir: str | Path | None = None,
    concurrency: int = 4,
) -> Run:
    """Run ``package`` once, in this process, to its end; return the finished run with its jobs.

    ``tasks``: the Celery tasks the package's entries name (registered under their names on a temporary
    app), or a mapping of names to plain callables. ``retry_delays="skip"`` retries a failed attempt at
    once instead of after its policy's delay (the delay is still recorded). ``data_dir``: keep the SQLite
    files there (default: a temporary folder, removed afterwards). ``concurrency``: worker threads, so
    entries that share a run order run side by side. The package's status and recurrences are ignored:
    it is saved, activated and run now, as ``run_now`` would.
    """
    with package_runner(
        tasks=tasks, retry_delays=retry_delays, data_dir=data_dir, concurrency=concurrency
    ) as jqm:
        return run_with(jqm, package, timeout=timeout)


def run_with(jqm: JobQueueManager, package: Package, *, timeout: timedelta = timedelta(seconds=60)) -> Run:
    """Save, activate and run ``package`` on a manager from ``package_runner``; the finished run."""
    jqm.save(replace(package, recurrences=()))
    jqm.activate(package.name)
    return jqm.run_now(package.name).wait(timeout=timeout.total_seconds())


@contextmanager
def package_runner(
    *,
    tasks: Tasks,
    retry_delays: Literal["real", "skip"] = "real",
    data_dir: str | Path | None = None,
    concurrency: int = 4,
) -> Iterator[JobQueueManager]:
    """A manager on a temporary embedded store, with a worker running in a thread until the block ends.

    For tests that run several packages, or that look at the store between runs (``run_with``).
    """
    if retry_delays not in ("real", "skip"):
        raise ValidationError(f"retry_delays must be 'real' or 'skip', got {retry_delays!r}")
    with _folder(data_dir) as folder:
        app = Celery("jqm-testing", set_as_current=False)
        app.conf.update(
            embedded_conf(folder, polling_interval_s=0.01),
            jqm_retry_delays=retry_delays,
            task_default_queue="jqm-testing",
            worker_hijack_root_logger=False,
        )
        _register(app, tasks)
        jqm = JobQueueManager(app)
        try:
            with start_worker(
                app, pool="threads", concurrency=concurrency, perform_ping_check=False, loglevel="WARNING"
            ):
                yield jqm
        finally:
            # The files are removed next: no connection of this test's store may outlive them.
            jqm.close()
            app.close()


def _register(app: Celery, tasks: Tasks) -> None:
    """Each task under its own name on ``app``, calling the user's task as a direct call does.

    The tasks given win over a task of the same name that the app got from elsewhere (another module's
    shared task, which Celery puts on every app).
    """
    named: dict[str, Callable[..., Any]] = {}
    if isinstance(tasks, Mapping):
        named.update(tasks)
    else:
        named.update((task.name, task) for task in cast("Iterable[Task]", tasks))
    for name, call in named.items():
        if name in app.tasks:
            app.tasks.unregister(name)
        app.task(name=name, shared=False)(_calling(call))


def _calling(call: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    return run


@contextmanager
def _folder(data_dir: str | Path | None) -> Iterator[Path]:
    if data_dir is not None:
        yield Path(data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="jqm-testing-") as folder:
        yield Path(folder)
