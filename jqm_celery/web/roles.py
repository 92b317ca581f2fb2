"""Who may do what: the one table every page and API endpoint checks (the Mendix seed's roles, plus Viewer).

Administrator may do everything. User may not delete packages, abort running jobs (cancelling a run
aborts its running job, shutting a queue down aborts its running jobs) or clean jobs and runs; User may
pause and resume queues. Viewer only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from jqm_celery.errors import ValidationError, did_you_mean


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        return {"admin": "Administrator", "user": "User", "viewer": "Viewer"}[self.value]


class Action(StrEnum):
    VIEW = "view"
    CREATE_PACKAGE = "create_package"
    EDIT_PACKAGE = "edit_package"
    DELETE_PACKAGE = "delete_package"
    ACTIVATE = "activate"
    HOLD = "hold"
    RUN_NOW = "run_now"
    CANCEL_RUN = "cancel_run"
    CANCEL_JOB = "cancel_job"
    ABORT_JOB = "abort_job"
    REQUEUE_JOB = "requeue_job"
    ENQUEUE_JOB = "enqueue_job"
    CLEAN_JOBS = "clean_jobs"
    PAUSE_QUEUE = "pause_queue"
    SHUT_DOWN_QUEUE = "shut_down_queue"
    CLEAN_RUNS = "clean_runs"


_EVERYONE = frozenset(Role)
_OPERATORS = frozenset({Role.ADMIN, Role.USER})
_ADMIN = frozenset({Role.ADMIN})

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.VIEW: _EVERYONE,
    Action.CREATE_PACKAGE: _OPERATORS,
    Action.EDIT_PACKAGE: _OPERATORS,
    Action.DELETE_PACKAGE: _ADMIN,
    Action.ACTIVATE: _OPERATORS,
    Action.HOLD: _OPERATORS,
    Action.RUN_NOW: _OPERATORS,
    Action.CANCEL_RUN: _ADMIN,
    Action.CANCEL_JOB: _OPERATORS,
    Action.ABORT_JOB: _ADMIN,
    Action.REQUEUE_JOB: _OPERATORS,
    Action.ENQUEUE_JOB: _OPERATORS,
    Action.CLEAN_JOBS: _ADMIN,
    Action.PAUSE_QUEUE: _OPERATORS,
    Action.SHUT_DOWN_QUEUE: _ADMIN,
    Action.CLEAN_RUNS: _ADMIN,
}


def allowed(role: Role, action: Action) -> bool:
    return role in PERMISSIONS[action]


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        names = [r.value for r in Role]
        raise ValidationError(
            f"role {value!r} is not valid{did_you_mean(value.lower(), names)}; "
            f"choose one of {', '.join(names)}"
        ) from None
