"""The web app: ``create_app(jqm)`` gives a FastAPI app with the pages and the REST API under ``/api``."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from jqm_celery.errors import JQMError, NotFoundError, StateError, ValidationError
from jqm_celery.manager import JobQueueManager
from jqm_celery.web.routes import api, audit, jobs, log, login, packages, runs, timeline
from jqm_celery.web.security import NotSignedIn, signed_in_user
from jqm_celery.web.templating import page, query
from jqm_celery.web.users import Users

API_PREFIX = "/api"
SESSION_COOKIE = "jqm_session"
SESSION_MAX_AGE_S = 12 * 3600


def create_app(jqm: JobQueueManager) -> FastAPI:
    """The web UI and REST API for ``jqm``; serve it with any ASGI server (``jqm web`` uses uvicorn)."""
    app = FastAPI(
        title="jqm-celery",
        summary="Job queue packages, runs, log entries, queues and jobs of a Celery app.",
        version="1",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    users = Users(jqm)
    app.state.jqm = jqm
    app.state.users = users
    app.add_middleware(
        SessionMiddleware,
        secret_key=users.session_secret(),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
    )
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    for module in (login, packages, timeline, runs, log, jobs, audit):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api.router, prefix=API_PREFIX)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(JQMError, _jqm_error)
    return app


def settle_heap() -> None:
    """Put every object alive at start-up out of the cyclic garbage collector's reach (``gc.freeze``).

    A full collection then scans only what requests allocate. Without it, the collector's occasional pass
    over the whole start-up heap took the log-entries page's p99 from about 20 ms to about 200 ms
    (``python -m benchmarks.web``). Call it once, after ``create_app``, in a process that only serves.
    """
    gc.collect()
    gc.freeze()


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX + "/")


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login{query(next=target)}", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request) or exc.status_code < 400:
        return await http_exception_handler(request, exc)
    try:
        user = signed_in_user(request)[0]
    except NotSignedIn:
        user = None
    return page(request, user, "error.html", status_code=exc.status_code, message=exc.detail)


_STATUS = {ValidationError: 422, NotFoundError: 404, StateError: 409}


async def _jqm_error(request: Request, exc: Exception) -> Response:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 409)
    if _is_api(request):
        return JSONResponse({"detail": str(exc)}, status_code=status)
    try:
        user = signed_in_user(request)[0]
    except NotSignedIn:
        user = None
    return page(request, user, "error.html", status_code=status, message=str(exc))
