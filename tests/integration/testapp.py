"""The Celery app the integration tests run: the same code in the test process and in the worker."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery

from jqm_celery import JobError, JobQueueManager
from jqm_celery.compiler import JOB_TASK

#: A test-only setting: the app's jqm clock runs this many seconds off (a machine whose clock is wrong).
CLOCK_SHIFT_SETTING = "tests_clock_shift_s"


class ShiftedClock:
    """The system's time, shifted: what a worker on a machine whose clock is off reads."""

    def __init__(self, shift_s: float) -> None:
        self.shift = timedelta(seconds=shift_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


def make_app(conf: dict[str, Any]) -> Celery:
    app = Celery("jqm-tests")
    app.conf.update(conf)
    _register_tasks(app)
    shift_s = conf.get(CLOCK_SHIFT_SETTING)
    JobQueueManager(app, clock=ShiftedClock(shift_s) if shift_s else None)
    return app


def _register_tasks(app: Celery) -> None:
    @app.task(shared=False, name="tests.record")
    def record(path: str, label: str, sleep_s: float = 0.0) -> str:
        """Append start and end marks (pid, monotonic time) to a file: ordering evidence across processes.

        The start mark also says which job of which run called it (None outside a jqm job).
        """
        start = {"label": label, "event": "start", "t": time.monotonic(), "pid": os.getpid()}
        _append(path, {**start, **_job_of(app)})
        time.sleep(sleep_s)
        _append(path, {"label": label, "event": "end", "t": time.monotonic(), "pid": os.getpid()})
        return label

    @app.task(shared=False, name="tests.flaky")
    def flaky(path: str, label: str, failures: int) -> str:
        """Fail the first ``failures`` calls for this label, then succeed."""
        marks = Path(path)
        seen = marks.read_text().count(f'"{label}"') if marks.exists() else 0
        call = {"label": label, "event": "call", "t": time.monotonic(), "pid": os.getpid()}
        _append(path, {**call, **_job_of(app)})
        if seen < failures:
            raise ConnectionError(f"{label}: simulated failure {seen + 1} of {failures}")
        return label

    @app.task(shared=False, name="tests.fail_job")
    def fail_job(message: str, traceback: bool = True) -> None:
        raise JobError(message, traceback=traceback)

    @app.task(shared=False, name="tests.boom")
    def boom(message: str = "boom") -> None:
        raise ValueError(message)

    @app.task(shared=False, name="tests.sleep")
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    @app.task(shared=False, name="tests.noop")
    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    @app.task(shared=False, name="tests.modules")
    def modules(path: str) -> None:
        """Write the names of the modules the calling process has loaded, as a JSON list, to a file."""
        Path(path).write_text(json.dumps(sorted(sys.modules)))


def _job_of(app: Celery) -> dict[str, Any]:
    """The ids of the jqm job (and its run) that calls the task; None outside a jqm job."""
    request = app.tasks[JOB_TASK].request
    kwargs = request.kwargs or {}
    job_id = request.args[0] if request.args else kwargs.get("job_id")
    return {"job_id": job_id, "run_id": kwargs.get("run_id")}


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_marks(path: str | Path) -> list[dict[str, Any]]:
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
