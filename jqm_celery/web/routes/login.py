"""Sign in and out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jqm_celery.web.roles import Action
from jqm_celery.web.security import SESSION_CSRF, SESSION_USER, Permit, csrf_token, users_of
from jqm_celery.web.templating import page, redirect
from jqm_celery.web.users import WebUser

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
    return redirect(_local(next))


@router.post("/logout")
async def logout(
    request: Request, user: Annotated[WebUser, Depends(Permit(Action.VIEW))]
) -> RedirectResponse:
    request.session.clear()
    return redirect("/login")


def _local(target: str) -> str:
    # Only paths on this site: an absolute or scheme-relative URL would make sign-in an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/packages"
