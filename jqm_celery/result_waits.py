"""The results a process registers to wait on while it sends a run, let go of: nothing there waits on them.

Celery registers a group's results with the result backend whenever it freezes or applies a canvas that
holds the group (a ``GroupResult``'s ready barrier, a chord's header). On Redis (and RPC) the process then
subscribes to each of those results and keeps the result objects until their message comes, which nothing
in it reads: a run's progress is the store's, and a chord's join is the result backend's, on the worker.
Without this every parallel stage of every run left its subscriptions and result objects behind, for the
life of the process that sent it: ``run_now``'s or beat's for a run's first part, and a worker's for the
parts it sends after and for each chord that Celery sends on from the worker.

Only what was registered inside the block is let go of; what the process registered before, to wait on
it, stays. The backend's registrations are per thread, as its backend is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: What a backend had registered before a block: each of its mappings' task ids (None: it registers none).
Registered = tuple[frozenset[str], ...] | None


def registered(backend: Any) -> Registered:
    """The task ids the backend waits on now: an asynchronous backend's (``AsyncBackendMixin``: Redis, RPC)
    concrete and weak registrations; None for one that registers nothing (its methods for it do nothing)."""
    if not getattr(backend, "is_async", False):
        return None
    return tuple(frozenset(mapping.keys()) for mapping in backend._pending_results)


def let_go(backend: Any, before: Registered) -> None:
    """Forget the results registered since ``before`` and stop listening for them."""
    if before is None:
        return
    for mapping, known in zip(backend._pending_results, before, strict=True):
        for task_id in [task_id for task_id in list(mapping.keys()) if task_id not in known]:
            mapping.pop(task_id, None)
            backend.result_consumer.cancel_for(task_id)


@contextmanager
def waiting_on_none(backend: Any) -> Iterator[None]:
    """Let go, when the block ends, of what the backend registered in it (see the module's text)."""
    before = registered(backend)
    try:
        yield
    finally:
        let_go(backend, before)
