"""Signing in, the session cookie, CSRF on forms, API tokens."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.web.roles import Role
from tests.web.conftest import NAMES, Browser, field_errors


def _login_form(client: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert match is not None
    return match.group(1)


def test_a_wrong_password_is_refused_without_saying_whether_the_name_exists(web: FastAPI) -> None:
    client = TestClient(web)
    csrf = _login_form(client)
    wrong_password = client.post("/login", data={"name": "ann", "password": "nope", "csrf": csrf})
    no_such_user = client.post("/login", data={"name": "nobody", "password": "nope", "csrf": csrf})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert field_errors(wrong_password.text) == field_errors(no_such_user.text)
    assert client.get("/packages", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_http_only_and_same_site_lax(web: FastAPI) -> None:
    client = TestClient(web)
    csrf = _login_form(client)
    response = client.post(
        "/login",
        data={"name": "ann", "password": "correct horse battery", "csrf": csrf},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_sign_in_only_redirects_to_a_page_of_this_site(web: FastAPI) -> None:
    client = TestClient(web)
    csrf = _login_form(client)
    response = client.post(
        "/login",
        data={"name": "ann", "password": "correct horse battery", "csrf": csrf, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/packages"


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    admin: Browser, jqm: JobQueueManager
) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    forged = admin.client.post("/packages/nightly/activate", data={}, follow_redirects=False)
    wrong = admin.client.post("/packages/nightly/activate", data={"csrf": "guess"}, follow_redirects=False)
    assert forged.status_code == wrong.status_code == 403
    assert "CSRF" in forged.text
    assert jqm.package("nightly").status == "DRAFT"


def test_an_api_change_with_a_session_needs_the_csrf_header(admin: Browser, jqm: JobQueueManager) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    assert admin.client.post("/api/packages/nightly/activate").status_code == 403
    allowed = admin.client.post("/api/packages/nightly/activate", headers={"X-CSRF-Token": admin.csrf})
    assert allowed.status_code == 200
    assert allowed.json()["status"] == "ACTIVE"


def test_an_api_token_authenticates_and_a_bad_one_gets_401(
    web: FastAPI, token_for: Callable[[Role], str]
) -> None:
    client = TestClient(web)
    token = token_for(Role.VIEWER)
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": NAMES[Role.VIEWER], "role": "viewer", "actions": ["view"]}
    bad = client.get("/api/me", headers={"Authorization": "Bearer jqm_not-a-token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"


def test_a_user_sees_no_abort_delete_or_clean_and_the_api_refuses_them(
    browser_for: Callable[[Role], Browser], token_for: Callable[[Role], str], jqm: JobQueueManager
) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    user = browser_for(Role.USER)
    assert ">Delete<" not in user.get("/packages/nightly").text
    assert 'id="clean-form"' not in user.get("/jobs").text
    headers = {"Authorization": f"Bearer {token_for(Role.USER)}"}
    refused = user.client.post("/api/jobs/1/abort", headers=headers)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "User 'ulla' may not abort job"}
    assert user.client.delete("/api/packages/nightly", headers=headers).status_code == 403
    assert jqm.package("nightly").status == "DRAFT"


def test_signing_out_ends_the_session(admin: Browser) -> None:
    assert admin.post("/logout").headers["location"] == "/login"
    assert admin.client.get("/packages", follow_redirects=False).status_code == 303
