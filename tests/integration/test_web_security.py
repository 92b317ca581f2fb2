"""Attacks on the web app as served: uvicorn on a loopback socket, a PostgreSQL store, real HTTP.

Password guessing per account and per address, bodies over the limit (a declared length and a chunked
stream), a cookie forged with the secret an older version kept in the database, a cookie copied before
sign-out, the cookie's flags over HTTP and HTTPS (through a trusted proxy), and a User trying every
Administrator-only endpoint. uvicorn trusts ``X-Forwarded-For`` / ``X-Forwarded-Proto`` from loopback
(its default), which is how these tests come from other addresses and over HTTPS.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import itsdangerous
import pytest
from celery import Celery

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.web.config import SECRET_FILE_ENV
from jqm_celery.web.roles import PERMISSIONS, Action, Role
from tests.integration.webserver import serve
from tests.services import postgres_database
from tests.store.conftest import register_billing_tasks

PASSWORD = "correct horse battery"
USERS = {"ann": Role.ADMIN, "ulla": Role.USER, "vic": Role.VIEWER}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: The machine may be busy: a slow answer is not a refused one.
TIMEOUT = httpx.Timeout(120.0)
_get = functools.partial(httpx.get, timeout=TIMEOUT)
_post = functools.partial(httpx.post, timeout=TIMEOUT)
_request = functools.partial(httpx.request, timeout=TIMEOUT)


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def manager_for(database_url: str) -> Iterator[Any]:
    """A manager on the test's store with extra conf; two of them are two web processes of one store."""
    made: list[JobQueueManager] = []

    def make(**conf: Any) -> JobQueueManager:
        app = Celery(f"web-security-{uuid.uuid4().hex[:6]}", set_as_current=False)
        app.conf.update(jqm_database_url=database_url, jqm_auto_migrate=True, **conf)
        register_billing_tasks(app)
        jqm = JobQueueManager(app)
        users = jqm.users()
        for name, role in USERS.items():
            if users.user(name) is None:
                users.add(name, role, PASSWORD)
        made.append(jqm)
        return jqm

    yield make
    for jqm in made:
        jqm.close()


def _sign_in(base: str, name: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    """A sign-in from a fresh browser; the response keeps the browser (``response.client``)."""
    client = httpx.Client(base_url=base, follow_redirects=False, headers=headers, timeout=TIMEOUT)
    form = _CSRF.search(client.get("/login").text)
    assert form is not None
    response = client.post("/login", data={"name": name, "password": password, "csrf": form.group(1)})
    response.extensions["client"] = client
    return response


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_guessing_one_account_s_password_is_refused_with_429_and_retry_after(manager_for: Any) -> None:
    jqm = manager_for(jqm_web_login_failures_per_account=3, jqm_web_login_window_s=600)
    with serve(jqm) as base:
        for guess in range(3):
            assert _sign_in(base, "ann", f"guess-{guess}", **_from(f"203.0.113.{guess}")).status_code == 401
        refused = _sign_in(base, "ann", PASSWORD, **_from("203.0.113.99"))
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert "too many failed sign-ins" in refused.text
        assert "location" not in refused.headers  # the right password is refused too: not signed in
        assert _sign_in(base, "vic", PASSWORD, **_from("203.0.113.99")).status_code == 303


def test_guessing_from_one_address_over_many_accounts_is_refused_with_429(manager_for: Any) -> None:
    jqm = manager_for(jqm_web_login_failures_per_address=3)
    with serve(jqm) as base:
        for name in ("ann", "ulla", "nobody"):
            assert _sign_in(base, name, "wrong", **_from("198.51.100.7")).status_code == 401
        refused = _sign_in(base, "vic", PASSWORD, **_from("198.51.100.7"))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert _sign_in(base, "vic", PASSWORD, **_from("198.51.100.8")).status_code == 303


def _raw_request(base: str, head: str, body_parts: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and body parts on a plain socket; the answer's status and body."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname or "", address.port or 80), timeout=120) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_part, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head_part).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += sock.recv(65536)
    return int(head_part.split(b" ", 2)[1]), body


def _api_head(base: str, token: str, length_header: str) -> str:
    return (
        f"POST /api/packages HTTP/1.1\nHost: {urlsplit(base).netloc}\nAuthorization: Bearer {token}\n"
        f"Content-Type: application/json\n{length_header}\n"
    )


def test_a_declared_body_over_the_limit_is_refused_with_413_before_a_byte_of_it_is_sent(
    manager_for: Any,
) -> None:
    jqm = manager_for(jqm_web_max_body_bytes=1000)
    token = jqm.users().create_token("ann", "body limit")
    with serve(jqm) as base:
        # No body follows the head: a server that waited to read it would never answer.
        status, answer = _raw_request(base, _api_head(base, token, "Content-Length: 10000000000"), [])
        assert status == 413, answer
        assert b"over the limit of 1,000 bytes" in answer
        assert b"jqm_web_max_body_bytes" in answer
        login = _raw_request(base, "POST /login HTTP/1.1\nHost: x\nContent-Length: 1000001\n", [])
        assert login[0] == 413
        fits = _post(
            f"{base}/api/packages",
            json={"name": "small", "entries": [{"task": "billing.export"}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert fits.status_code == 201, fits.text
    assert [p.name for p in jqm.packages()] == ["small"]


def test_a_chunked_body_is_cut_off_at_the_limit_with_413_and_nothing_is_written(manager_for: Any) -> None:
    jqm = manager_for(jqm_web_max_body_bytes=1000)
    token = jqm.users().create_token("ann", "body limit")
    start = b'{"name": "big", "entries": [{"task": "billing.export", "description": "'
    parts = [start, *[b"a" * 400] * 3]  # past the limit, and never the last chunk
    chunks = [f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts]
    with serve(jqm) as base:
        status, answer = _raw_request(base, _api_head(base, token, "Transfer-Encoding: chunked"), chunks)
    assert status == 413, answer
    assert b"over the limit of 1,000 bytes" in answer
    assert jqm.packages() == []


def _forged_cookie(secret: str, session: dict[str, str]) -> str:
    data = base64.b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


def test_a_cookie_signed_with_the_secret_kept_in_the_database_is_refused_once_a_secret_file_is_set(
    manager_for: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    before = manager_for()
    with caplog.at_level("WARNING", logger="jqm_celery.web.app"), serve(before):
        pass
    assert "anyone who can read the database can sign a session" in caplog.text
    read_from_the_database = before.users().store.read_setting("session_secret")
    assert read_from_the_database is not None
    secret_file = tmp_path / "web-secret"
    secret_file.write_text("s" * 48 + "\n")
    monkeypatch.setenv(SECRET_FILE_ENV, str(secret_file))
    caplog.clear()
    jqm = manager_for()
    forged = {"user": "ann", "sid": "forged", "csrf": "forged"}
    with caplog.at_level("WARNING", logger="jqm_celery.web.app"), serve(jqm) as base:
        stolen_key = _get(
            f"{base}/api/me", cookies={"jqm_session": _forged_cookie(read_from_the_database, forged)}
        )
        the_real_key = _get(f"{base}/api/me", cookies={"jqm_session": _forged_cookie("s" * 48, forged)})
    assert stolen_key.status_code == 401
    assert the_real_key.status_code == 200  # the forgery itself is right: only the key differs
    assert "session signing secret" not in caplog.text


def test_a_cookie_copied_before_sign_out_is_refused_after_it_by_every_web_process(manager_for: Any) -> None:
    first, second = manager_for(), manager_for()
    with serve(first) as one, serve(second) as other:
        signed_in = _sign_in(one, "ann")
        assert signed_in.status_code == 303
        browser: httpx.Client = signed_in.extensions["client"]
        stolen = browser.cookies["jqm_session"]
        assert _get(f"{other}/api/me", cookies={"jqm_session": stolen}).status_code == 200
        page = browser.get("/packages")
        csrf = _CSRF.search(page.text)
        assert csrf is not None
        assert browser.post("/logout", data={"csrf": csrf.group(1)}).headers["location"] == "/login"
        for base in (one, other):
            assert _get(f"{base}/api/me", cookies={"jqm_session": stolen}).status_code == 401
            replayed = _get(f"{base}/packages", cookies={"jqm_session": stolen})
            assert replayed.status_code == 303
            assert replayed.headers["location"].startswith("/login")


def _cookie_flags(response: httpx.Response) -> set[str]:
    """The attributes of the session cookie the response sets, lower case (``httponly``, ``samesite=lax``)."""
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "jqm_session" in v)
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_secure_over_https_and_http_only_and_same_site_always(manager_for: Any) -> None:
    jqm = manager_for()
    with serve(jqm) as base:
        plain = _sign_in(base, "ann")
        # As a TLS-terminating proxy on loopback sends it; the browser's side of the proxy is HTTPS.
        proxy = httpx.Client(
            base_url=base, follow_redirects=False, headers={"X-Forwarded-Proto": "https"}, timeout=TIMEOUT
        )
        form = proxy.get("/login")
        csrf = _CSRF.search(form.text)
        assert csrf is not None
        over_https = proxy.post(
            "/login",
            data={"name": "ann", "password": PASSWORD, "csrf": csrf.group(1)},
            headers={"Cookie": f"jqm_session={form.cookies['jqm_session']}"},
        )
    assert plain.status_code == over_https.status_code == 303
    assert {"httponly", "samesite=lax"} <= _cookie_flags(plain)
    assert "secure" not in _cookie_flags(plain)
    assert {"httponly", "samesite=lax", "secure"} <= _cookie_flags(form)
    assert {"httponly", "samesite=lax", "secure"} <= _cookie_flags(over_https)


ADMIN_ONLY = {action for action, roles in PERMISSIONS.items() if roles == {Role.ADMIN}}


def test_a_user_and_a_viewer_are_refused_every_administrator_action_and_nothing_changes(
    manager_for: Any,
) -> None:
    jqm = manager_for()
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    queue = f"reports-{uuid.uuid4().hex[:6]}"
    jqm.define_queue(queue, 1)
    attempts = {
        Action.DELETE_PACKAGE: ("DELETE", "/api/packages/nightly", None),
        Action.ABORT_JOB: ("POST", "/api/jobs/1/abort", None),
        Action.CANCEL_RUN: ("POST", "/api/runs/1/cancel", None),
        Action.SHUT_DOWN_QUEUE: ("POST", f"/api/queues/{queue}/shutdown", None),
        Action.CLEAN_JOBS: ("POST", "/api/jobs/clean", {"older_than_s": 0}),
        Action.CLEAN_RUNS: ("POST", "/api/runs/clean", {"older_than_s": 0}),
    }
    assert set(attempts) == ADMIN_ONLY
    viewer_only = {("POST", f"/api/queues/{queue}/pause"), ("POST", "/api/packages/nightly/activate")}
    with serve(jqm) as base:
        for name in ("ulla", "vic"):
            headers = {"Authorization": f"Bearer {jqm.users().create_token(name, 'roles')}"}
            for method, path, body in attempts.values():
                refused = _request(method, f"{base}{path}", json=body, headers=headers)
                assert refused.status_code == 403, f"{name}: {method} {path}: {refused.status_code}"
                assert "may not" in refused.json()["detail"]
        viewer = {"Authorization": f"Bearer {jqm.users().create_token('vic', 'roles')}"}
        for method, path in viewer_only:
            assert _request(method, f"{base}{path}", headers=viewer).status_code == 403
    assert jqm.package("nightly").status == "DRAFT"
    assert not next(q for q in jqm.queues() if q.name == queue).paused
