"""How a job calls the user's task: as a direct call, or through its task class's own ``__call__``."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery, Task, current_task
from celery._state import _task_stack

from jqm_celery.runtime import _call

APP = Celery("user-task-call", set_as_current=False)
seen: list[Any] = []


@APP.task(name="calls.bound", bind=True, shared=False)
def bound(self: Task, value: int) -> int:
    seen.append((self.request.called_directly, current_task.name))
    return value * 2


class Audited(Task):  # type: ignore[misc]
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        seen.append(("audited", args, kwargs))
        return super().__call__(*args, **kwargs)


@APP.task(name="calls.audited", base=Audited, shared=False)
def audited(value: int, *, extra: str) -> str:
    return f"{value}{extra}"


def test_a_plain_task_runs_as_a_direct_call_and_is_the_current_task() -> None:
    seen.clear()
    assert _call(APP.tasks["calls.bound"], [21], {}) == 42
    assert seen == [(True, "calls.bound")]
    assert _task_stack.top is None, "the task stack is popped again"


def test_a_task_class_with_its_own_call_is_called_through_it() -> None:
    seen.clear()
    assert _call(APP.tasks["calls.audited"], [1], {"extra": "x"}) == "1x"
    assert seen == [("audited", (1,), {"extra": "x"})]


def test_in_a_worker_that_patched_task_call_a_plain_task_still_runs_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Celery worker replaces Task.__call__ (celery.app.trace); tasks inherit the replacement.
    original = Task.__call__

    def patched(self: Task, *args: Any, **kwargs: Any) -> Any:
        seen.append("patched __call__")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Task, "__call__", patched)
    seen.clear()
    assert _call(APP.tasks["calls.bound"], [1], {}) == 2
    assert seen == [(True, "calls.bound")]
