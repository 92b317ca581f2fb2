"""Sign in and out, and the user's profile (their time zone)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jqm_celery.errors import ValidationError
from jqm_celery.web.roles import Action
from jqm_celery.web.security import SESSION_CSRF, SESSION_USER, Permit, csrf_token, users_of
from jqm_celery.web.templating import SESSION_TZ, flash, page, redirect, viewer_zone
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
    expected = csrf_token(request)
    user = users_of(request).authenticate(name, password) if hmac.compare_digest(csrf, expected) else None
    if user is None:
        error = "the name or the password is wrong" if csrf == expected else "the form expired; sign in again"
        return page(request, None, "login.html", status_code=401, next=_local(next), name=name, error=error)
    # A new session on sign-in: a session id planted before it cannot be taken over.
    request.session.clear()
    request.session[SESSION_USER] = user.name
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)
    request.session[SESSION_TZ] = users_of(request).time_zone(user.name) or _known_zone(browser_tz)
    return redirect(_local(next))


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
    request.session.clear()
    return redirect("/login")


def _local(target: str) -> str:
    # Only paths on this site: an absolute or scheme-relative URL would make sign-in an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/packages"
