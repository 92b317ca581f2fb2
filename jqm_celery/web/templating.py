"""Jinja2 pages: every page gets the signed-in user, their permissions, the CSRF token and flash messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from jqm_celery.definitions import Entry, Package
from jqm_celery.web.messages import for_web
from jqm_celery.web.picture import run_picture
from jqm_celery.web.roles import Action, allowed
from jqm_celery.web.security import csrf_token
from jqm_celery.web.users import WebUser

_FLASH = "flash"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


#: The session key of the viewer's time zone: the one on their profile, else their browser's.
SESSION_TZ = "tz"


def viewer_zone(request: Request) -> ZoneInfo:
    """The time zone every time on the viewer's pages is shown in (UTC until one is known)."""
    try:
        return ZoneInfo(str(request.session.get(SESSION_TZ) or "UTC"))
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def in_zone(value: datetime | None, zone: ZoneInfo, seconds: bool = True) -> str:
    """``2026-03-30 08:00:00 CEST``: ``value`` on ``zone``'s wall clock, with the zone's abbreviation."""
    if value is None:
        return "—"
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


@pass_context
def when(context: Context, value: datetime | None) -> str:
    zone = context.get("tz")
    return in_zone(value, zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC"))


def duration(span: timedelta) -> str:
    """``0.25 s``, ``12.3 s``, ``3 min 4 s``, ``2 h 5 min``: a duration as an operator reads it."""
    seconds = max(0.0, span.total_seconds())
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@pass_context
def took(context: Context, started: datetime | None, finished: datetime | None) -> str:
    """How long something took; ``running 12.3 s`` while it has not finished."""
    if started is None:
        return "—"
    if finished is not None:
        return duration(finished - started)
    now = context.get("now")
    return f"running {duration((now if isinstance(now, datetime) else datetime.now(UTC)) - started)}"


def wall_time(value: datetime, tz: str) -> str:
    """``value`` on the wall clock of the IANA zone ``tz``, named: ``08:00 Europe/Amsterdam``."""
    local = value.astimezone(ZoneInfo(tz))
    return f"{local.strftime('%Y-%m-%d %H:%M')} {tz}"


def query(**params: Any) -> str:
    """``?a=1&b=2`` from the parameters that are set."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def ordered_entries(package: Package) -> list[tuple[int, Entry]]:
    """The entries with their 1-based position, in run order (the order they run in)."""
    return sorted(enumerate(package.entries, start=1), key=lambda item: (item[1].run_order, item[0]))


templates.env.filters["when"] = when
templates.env.filters["wall_time"] = wall_time
templates.env.filters["took"] = took
templates.env.globals["run_picture"] = run_picture
templates.env.globals["ordered_entries"] = ordered_entries
templates.env.globals["query"] = query
templates.env.globals["Action"] = Action


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault(_FLASH, []).append([kind, for_web(message)])


def page(
    request: Request, user: WebUser | None, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    flashes = request.session.pop(_FLASH, []) if _FLASH in request.session else []

    if isinstance(context.get("message"), str):
        context["message"] = for_web(context["message"])
    if isinstance(context.get("errors"), dict):
        context["errors"] = {name: for_web(str(text)) for name, text in context["errors"].items()}

    def can(action: Action) -> bool:
        return user is not None and allowed(user.role, action)

    return templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "can": can,
            "csrf": csrf_token(request),
            "flashes": flashes,
            "flower_url": request.app.state.jqm.settings.flower_url,
            "tz": viewer_zone(request),
            "now": request.app.state.jqm.clock.now(),
            **context,
        },
        status_code=status_code,
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
