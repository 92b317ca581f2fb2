"""ASGI layers around the web app: the request body limit, and the session cookie, Secure over HTTPS."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuses a request body larger than ``max_bytes`` with 413, before reading it.

    A ``Content-Length`` over the limit is answered at once, without reading a byte of the body and
    without running the route. A body that does not say its length (chunked) is read only up to the
    limit: the route reading it gets a 413 there.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and not length.isdigit():
            await _refuse(send, 400, "the Content-Length header is not a number of bytes")
            return
        if length is not None and int(length) > self.max_bytes:
            await _refuse(send, 413, self._too_large(f"of {int(length):,} bytes "))
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large(""))
            return message

        await self.app(scope, receive_within_limit, send)

    def _too_large(self, size: str) -> str:
        return (
            f"the request body {size}is over the limit of {self.max_bytes:,} bytes (the "
            "jqm_web_max_body_bytes setting); send less, e.g. fewer entries or smaller arguments"
        )


def _content_length(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1").strip())
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # The body was not read: the connection cannot carry another request after this answer.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Sessions:
    """Starlette's signed-cookie sessions (``HttpOnly``, ``SameSite``), whose cookie is also ``Secure``
    when the request came over HTTPS — directly, or through a proxy the ASGI server trusts (uvicorn takes
    the scheme from ``X-Forwarded-Proto`` sent by the addresses of ``--forwarded-allow-ips``)."""

    def __init__(self, app: ASGIApp, secret_key: str, session_cookie: str, max_age: int) -> None:
        options: dict[str, Any] = {"session_cookie": session_cookie, "max_age": max_age, "same_site": "lax"}
        self.plain = SessionMiddleware(app, secret_key, https_only=False, **options)
        self.secure = SessionMiddleware(app, secret_key, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        over_tls = scope.get("scheme") in ("https", "wss")
        await (self.secure if over_tls else self.plain)(scope, receive, send)
