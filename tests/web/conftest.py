"""The web app in-process (Starlette's TestClient) on a SQLite store: pages, API, roles, forms.

Nothing here needs a worker: actions that would reach the broker are not taken (run now is tested in the
browser tests, against a real worker).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jqm_celery import JobQueueManager
from jqm_celery.web import create_app
from jqm_celery.web.roles import Role
from tests.store.conftest import FakeClock, register_billing_tasks

PASSWORD = "correct horse battery"
NAMES = {Role.ADMIN: "ann", Role.USER: "ulla", Role.VIEWER: "vic"}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jqm(tmp_path: Path, clock: FakeClock) -> Iterator[JobQueueManager]:
    app = Celery("web-tests", set_as_current=False)
    app.conf.jqm_database_url = f"sqlite:///{tmp_path / 'jqm.sqlite'}"
    register_billing_tasks(app)
    manager = JobQueueManager(app, clock=clock)
    manager.users().add(NAMES[Role.ADMIN], Role.ADMIN, PASSWORD)
    manager.users().add(NAMES[Role.USER], Role.USER, PASSWORD)
    manager.users().add(NAMES[Role.VIEWER], Role.VIEWER, PASSWORD)
    yield manager
    manager.close()


@pytest.fixture
def web(jqm: JobQueueManager) -> FastAPI:
    return create_app(jqm)


class Browser:
    """A signed-in TestClient that knows its session's CSRF token."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    def get(self, url: str, **params: str) -> httpx.Response:
        return self.client.get(url, params=params)

    def post(self, url: str, data: dict[str, str | list[str]] | None = None) -> httpx.Response:
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})}, follow_redirects=False)


def sign_in(web: FastAPI, name: str, password: str = PASSWORD, browser_tz: str = "") -> Browser:
    client = TestClient(web)
    token = _CSRF.search(client.get("/login").text)
    assert token is not None
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf": token.group(1), "browser_tz": browser_tz},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/packages")
    csrf = _CSRF.search(page.text)
    assert csrf is not None
    return Browser(client, csrf.group(1))


@pytest.fixture
def browser_for(web: FastAPI) -> Callable[[Role], Browser]:
    return lambda role: sign_in(web, NAMES[role])


@pytest.fixture
def admin(browser_for: Callable[[Role], Browser]) -> Browser:
    return browser_for(Role.ADMIN)


@pytest.fixture
def token_for(jqm: JobQueueManager) -> Callable[[Role], str]:
    return lambda role: jqm.users().create_token(NAMES[role], "tests")


def field_errors(html: str) -> dict[str, str]:
    """The inline errors on a page: field name → message."""
    return {
        name: html_lib.unescape(re.sub(r"\s+", " ", message).strip())
        for name, message in re.findall(r'id="error-([\w-]+)">([^<]*)<', html)
    }
