"""What a task running as a jqm job can know about its job: ``current_job()``.

A job's body may run more than once (see docs/job-queue.md, "Guarantees"): a task that must not do its
work twice keys it on ``current_job().job_id``, which stays the same across the job's attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class JobContext:
    """The job whose body is running: its id, its run and package (None for a stand-alone job), the
    task's name, ``retry`` (0 for the first try, n for the n-th retry of a failed attempt) and
    ``attempt_id`` (the id of this attempt's log entry: a new one each time the body starts)."""

    job_id: int
    run_id: int | None
    package: str | None
    task: str
    retry: int
    attempt_id: int


_current: ContextVar[JobContext | None] = ContextVar("jqm_current_job", default=None)


def current_job() -> JobContext | None:
    """The jqm job whose body is running in this thread, or None outside one (a plain Celery call)."""
    return _current.get()


@contextmanager
def running(job: JobContext) -> Iterator[None]:
    """``job`` is the current job for the block (the runtime wraps a job's body in it)."""
    token = _current.set(job)
    try:
        yield
    finally:
        _current.reset(token)
