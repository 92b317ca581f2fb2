"""Sign in and out, and the user's profile (their time zone)."""

from __future__ import annotations

import hmac
import math
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jqm_celery.errors import ValidationError
from jqm_celery.web.roles import Action
from jqm_celery.web.security import Permit, csrf_token, end_session, start_session, users_of
from jqm_celery.web.templating import SESSION_TZ, flash, page, redirect, viewer_zone
from jqm_celery.web.throttle import LoginThrottle
from jqm_celery.web.users import WebUser, parse_time_zone

router = APIRouter()


@router.get("/")
async def home(user: Annotated[WebUser, Depends(Permit(Action.VIEW))]) -> RedirectResponse:
    return redirect("/packages")


@router.get("/login")
def login_form(request: Request, next: str = "/packages") -> HTMLResponse:
    return page(request, None, "login.html", next=_local(next), name="", error=None)


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/packages",
    browser_tz: Annotated[str, Form()] = "",
) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    account, address = name[:100], request.client.host if request.client else "unknown"
    wait_s = throttle.wait_s(account, address)
    if wait_s:
        error = (
            f"too many failed sign-ins for this name or from this address; try again in {_duration(wait_s)}"
        )
        refused = _login_page(request, 429, next, name, error)
        refused.headers["Retry-After"] = str(wait_s)
        return refused
    expected = csrf_token(request)
    if not hmac.compare_digest(csrf, expected):
        error = "the form expired; sign in again"
        return _login_page(request, 401, next, name, error)
    user = users_of(request).authenticate(name, password)
    if user is None:
        throttle.failed(account, address)
        error = "the name or the password is wrong"
        return _login_page(request, 401, next, name, error)
    throttle.succeeded(account)
    start_session(request, user)
    request.session[SESSION_TZ] = users_of(request).time_zone(user.name) or _known_zone(browser_tz)
    return redirect(_local(next))


def _login_page(request: Request, status: int, next: str, name: str, error: str) -> HTMLResponse:
    return page(request, None, "login.html", status_code=status, next=_local(next), name=name, error=error)


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


@router.get("/profile")
def profile(request: Request, user: Annotated[WebUser, Depends(Permit(Action.VIEW))]) -> HTMLResponse:
    chosen = users_of(request).time_zone(user.name)
    return _profile(request, user, chosen, {"tz": chosen or str(viewer_zone(request))}, {})


@router.post("/profile")
def set_profile(
    request: Request,
    user: Annotated[WebUser, Depends(Permit(Action.VIEW))],
    tz: Annotated[str, Form()] = "",
) -> Response:
    try:
        chosen = users_of(request).set_time_zone(user.name, tz)
    except ValidationError as exc:
        return _profile(request, user, None, {"tz": tz}, {"tz": str(exc)})
    request.session[SESSION_TZ] = chosen
    flash(request, f"times are shown in {chosen}")
    return redirect("/profile")


def _profile(
    request: Request, user: WebUser, chosen: str | None, values: dict[str, str], errors: dict[str, str]
) -> HTMLResponse:
    return page(
        request,
        user,
        "profile.html",
        status_code=422 if errors else 200,
        chosen=chosen,
        values=values,
        errors=errors,
        zones=sorted(available_timezones()),
    )


def _known_zone(tz: str) -> str:
    try:
        return parse_time_zone(tz)
    except ValidationError:
        return "UTC"


@router.post("/logout")
async def logout(
    request: Request, user: Annotated[WebUser, Depends(Permit(Action.VIEW))]
) -> RedirectResponse:
    end_session(request)
    return redirect("/login")


def _local(target: str) -> str:
    # Only paths on this site: an absolute or scheme-relative URL would make sign-in an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/packages"
