"""The exceptions jqm-celery raises. Every message names the object, the bad value and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class JQMError(Exception):
    """Base class of every error jqm-celery raises on purpose."""


class ValidationError(JQMError):
    """Raised when a definition or an argument is invalid; nothing has been written."""


class NotFoundError(JQMError):
    """Raised when a package, run, job or queue named by the caller does not exist."""


class StateError(JQMError):
    """Raised when an action is not allowed in the current status (e.g. editing an ACTIVE package)."""


class ConfigError(JQMError):
    """Raised at start-up when a ``jqm_*`` setting on the Celery app is invalid."""


class JobError(Exception):
    """Raised by a task to fail its own job on purpose: the job is not retried.

    ``traceback=False`` keeps the traceback out of the log entry (the seed's SetErrorForJob
    "without stack trace").
    """

    def __init__(self, message: str, *, traceback: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.traceback = traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_job_error, (self.message, self.traceback))


class JobFailed(JQMError):
    """Raised by ``jqm.job`` once its job has failed for good and that is recorded, so that Celery marks
    the task FAILURE (Flower, events, the worker log); its error callback moves the run on."""


def _rebuild_job_error(message: str, traceback: bool) -> JobError:
    return JobError(message, traceback=traceback)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
