"""The web app: ``create_app(jqm)`` gives a FastAPI app with the pages and the REST API under ``/api``."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from jqm_celery.errors import JQMError, NotFoundError, StateError, ValidationError
from jqm_celery.manager import JobQueueManager
from jqm_celery.web.config import SESSION_MAX_AGE_S, WebSettings
from jqm_celery.web.guards import BodyLimit, Sessions
from jqm_celery.web.routes import api, audit, jobs, log, login, packages, queues, runs, timeline
from jqm_celery.web.security import NotSignedIn, signed_in_user
from jqm_celery.web.templating import page, query
from jqm_celery.web.throttle import LoginThrottle

API_PREFIX = "/api"
SESSION_COOKIE = "jqm_session"
logger = logging.getLogger(__name__)


def create_app(jqm: JobQueueManager) -> FastAPI:
    """The web UI and REST API for ``jqm``; serve it with any ASGI server (``jqm web`` uses uvicorn)."""
    app = FastAPI(
        title="jqm-celery",
        summary="Job queue packages, runs, log entries, queues and jobs of a Celery app.",
        version="1",
        docs_url=None,  # served below, with Swagger UI's files from an installed package, not a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    users = jqm.users()
    settings = WebSettings.from_conf(jqm.app.conf)
    secret = users.signing_secret()
    if (warning := secret.warning()) is not None:
        logger.warning("%s", warning)
    app.state.jqm = jqm
    app.state.users = users
    app.state.login_throttle = LoginThrottle(
        settings.login_failures_per_account, settings.login_failures_per_address, settings.login_window_s
    )
    app.add_middleware(
        Sessions,
        secret_key=secret.value,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    _serve_api_docs(app)
    for module in (login, packages, timeline, runs, log, jobs, queues, audit):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api.router, prefix=API_PREFIX)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(JQMError, _jqm_error)
    return app


def _serve_api_docs(app: FastAPI) -> None:
    """Swagger UI at ``/api/docs``, its script and style served from the swagger-ui-bundle package, so the
    page works on a machine that cannot reach a CDN."""
    assets = f"{API_PREFIX}/docs/assets"
    app.mount(assets, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def api_docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="jqm-celery — REST API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )


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
