"""Who is asking, and may they: the session or Bearer token, the role table, and CSRF for cookie sessions.

Every route depends on ``Permit(action)``. It finds the user (an ``Authorization: Bearer`` API token, or
the signed session cookie), refuses a role the table does not allow (403), and for a change made with a
session cookie requires the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import HTTPException, Request

from jqm_celery.web.roles import Action, allowed
from jqm_celery.web.users import Users, WebUser

SESSION_USER = "user"
SESSION_CSRF = "csrf"
#: A random id per sign-in; signing out records it as ended in the store, so a copied cookie dies with it.
SESSION_ID = "sid"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(Exception):
    """Raised when a request carries neither a valid session nor a valid API token."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    session: dict[str, Any] = request.session
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def users_of(request: Request) -> Users:
    users: Users = request.app.state.users
    return users


def signed_in_user(request: Request) -> tuple[WebUser, bool]:
    """The user and whether they came by session cookie (True) or by API token (False)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = users_of(request).user_of_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise NotSignedIn("the API token is not valid; create one with `jqm users token NAME`")
        return user, False
    name = request.session.get(SESSION_USER)
    session_id = request.session.get(SESSION_ID)
    if not isinstance(name, str) or not isinstance(session_id, str):
        raise NotSignedIn("sign in first")
    users = users_of(request)
    user = None if users.session_ended(session_id) else users.user(name)
    if user is None:
        raise NotSignedIn("sign in first")
    return user, True


def start_session(request: Request, user: WebUser) -> None:
    """A new session for ``user``: new id and CSRF token, so a session planted before cannot be taken
    over."""
    request.session.clear()
    request.session[SESSION_USER] = user.name
    request.session[SESSION_ID] = secrets.token_urlsafe(32)
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    """Sign out: the session's cookie is refused from now on, also if a copy of it is sent again."""
    session_id = request.session.get(SESSION_ID)
    if isinstance(session_id, str):
        users_of(request).end_session(session_id)
    request.session.clear()


class Permit:
    """A route dependency: the signed-in user, if their role may do ``action``."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, request: Request) -> WebUser:
        user, by_session = signed_in_user(request)
        if not allowed(user.role, self.action):
            raise HTTPException(
                403, f"{user.role.label} '{user.name}' may not {self.action.value.replace('_', ' ')}"
            )
        if by_session and request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and _is_form(request):
                sent = str((await request.form()).get(CSRF_FIELD) or "")
            expected = request.session.get(SESSION_CSRF)
            if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent, expected):
                raise HTTPException(
                    403, "the form has expired (CSRF check failed); reload the page and retry"
                )
        return user

    def __repr__(self) -> str:
        return f"Permit({self.action.value})"


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
