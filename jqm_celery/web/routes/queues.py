"""The queues page: each queue's pool size, paused state, live workers and jobs by status; pause, resume
and shut down (as in the Mendix module)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jqm_celery.errors import JQMError
from jqm_celery.queue_records import QueueState
from jqm_celery.web.params import QueueName, manager
from jqm_celery.web.permits import QueuePauser, QueueShutter, Viewer
from jqm_celery.web.templating import flash, page, redirect

router = APIRouter()


@router.get("/queues")
def queues(request: Request, user: Viewer) -> HTMLResponse:
    return page(request, user, "queues.html", queues=manager(request).queues())


@router.post("/queues/{name}/pause")
def pause(request: Request, user: QueuePauser, name: QueueName) -> RedirectResponse:
    return _control(request, "paused", lambda: manager(request).pause_queue(name, actor=user.name))


@router.post("/queues/{name}/resume")
def resume(request: Request, user: QueuePauser, name: QueueName) -> RedirectResponse:
    return _control(request, "resumed", lambda: manager(request).resume_queue(name, actor=user.name))


@router.post("/queues/{name}/shutdown")
def shut_down(request: Request, user: QueueShutter, name: QueueName) -> RedirectResponse:
    done = "shut down: paused, its running jobs aborted"
    return _control(request, done, lambda: manager(request).shut_down_queue(name, actor=user.name))


def _control(request: Request, done: str, act: Callable[[], QueueState]) -> RedirectResponse:
    try:
        queue = act()
        flash(request, f"queue '{queue.name}' {done}")
    except JQMError as exc:
        flash(request, str(exc), "error")
    return redirect("/queues")
