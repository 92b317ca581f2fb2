"""Every route × every role: the role table decides, for pages and API alike, and no route goes unchecked."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from jqm_celery.web.roles import PERMISSIONS, Action, Role
from jqm_celery.web.security import Permit
from tests.web.conftest import Browser

#: Routes anyone may call: signing in, and the OpenAPI document.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/openapi.json"), ("GET", "/api/docs")}
#: What each route does, written out by hand: a new route fails the tests until it is added here.
EXPECTED = {
    ("GET", "/"): Action.VIEW,
    ("POST", "/logout"): Action.VIEW,
    ("GET", "/profile"): Action.VIEW,
    ("POST", "/profile"): Action.VIEW,
    ("GET", "/packages"): Action.VIEW,
    ("GET", "/new-package"): Action.CREATE_PACKAGE,
    ("POST", "/new-package"): Action.CREATE_PACKAGE,
    ("GET", "/packages/{name}"): Action.VIEW,
    ("GET", "/packages/{name}/workers"): Action.VIEW,
    ("POST", "/packages/{name}/entries"): Action.EDIT_PACKAGE,
    ("GET", "/packages/{name}/entries/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/entries/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/entries/{position}/delete"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/recurrences"): Action.EDIT_PACKAGE,
    ("GET", "/packages/{name}/recurrences/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/recurrences/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/recurrences/{position}/delete"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/notifications"): Action.EDIT_PACKAGE,
    ("GET", "/packages/{name}/notifications/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/notifications/{position}"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/notifications/{position}/delete"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/settings"): Action.EDIT_PACKAGE,
    ("POST", "/packages/{name}/activate"): Action.ACTIVATE,
    ("POST", "/packages/{name}/hold"): Action.HOLD,
    ("POST", "/packages/{name}/run"): Action.RUN_NOW,
    ("POST", "/packages/{name}/delete"): Action.DELETE_PACKAGE,
    ("GET", "/timeline"): Action.VIEW,
    ("GET", "/runs"): Action.VIEW,
    ("GET", "/runs/{run_id}"): Action.VIEW,
    ("GET", "/runs/{run_id}/jobs"): Action.VIEW,
    ("POST", "/runs/{run_id}/cancel"): Action.CANCEL_RUN,
    ("POST", "/runs/clean"): Action.CLEAN_RUNS,
    ("GET", "/log"): Action.VIEW,
    ("GET", "/log/{entry_id}"): Action.VIEW,
    ("GET", "/jobs"): Action.VIEW,
    ("GET", "/jobs/{job_id}"): Action.VIEW,
    ("POST", "/jobs/{job_id}/cancel"): Action.CANCEL_JOB,
    ("POST", "/jobs/{job_id}/abort"): Action.ABORT_JOB,
    ("POST", "/jobs/{job_id}/requeue"): Action.REQUEUE_JOB,
    ("POST", "/jobs/clean"): Action.CLEAN_JOBS,
    ("POST", "/jobs"): Action.ENQUEUE_JOB,
    ("GET", "/queues"): Action.VIEW,
    ("POST", "/queues/{name}/pause"): Action.PAUSE_QUEUE,
    ("POST", "/queues/{name}/resume"): Action.PAUSE_QUEUE,
    ("POST", "/queues/{name}/shutdown"): Action.SHUT_DOWN_QUEUE,
    ("GET", "/audit"): Action.VIEW,
    ("GET", "/api/me"): Action.VIEW,
    ("GET", "/api/packages"): Action.VIEW,
    ("GET", "/api/packages/{name}"): Action.VIEW,
    ("POST", "/api/packages"): Action.CREATE_PACKAGE,
    ("PUT", "/api/packages/{name}"): Action.EDIT_PACKAGE,
    ("DELETE", "/api/packages/{name}"): Action.DELETE_PACKAGE,
    ("POST", "/api/packages/{name}/activate"): Action.ACTIVATE,
    ("POST", "/api/packages/{name}/hold"): Action.HOLD,
    ("POST", "/api/packages/{name}/run"): Action.RUN_NOW,
    ("GET", "/api/runs"): Action.VIEW,
    ("GET", "/api/runs/{run_id}"): Action.VIEW,
    ("POST", "/api/runs/{run_id}/cancel"): Action.CANCEL_RUN,
    ("POST", "/api/runs/clean"): Action.CLEAN_RUNS,
    ("GET", "/api/log-entries"): Action.VIEW,
    ("GET", "/api/log-entries/{entry_id}"): Action.VIEW,
    ("GET", "/api/cues"): Action.VIEW,
    ("GET", "/api/queues"): Action.VIEW,
    ("POST", "/api/queues/{name}/pause"): Action.PAUSE_QUEUE,
    ("POST", "/api/queues/{name}/resume"): Action.PAUSE_QUEUE,
    ("POST", "/api/queues/{name}/shutdown"): Action.SHUT_DOWN_QUEUE,
    ("GET", "/api/jobs"): Action.VIEW,
    ("GET", "/api/jobs/{job_id}"): Action.VIEW,
    ("POST", "/api/jobs/{job_id}/cancel"): Action.CANCEL_JOB,
    ("POST", "/api/jobs/{job_id}/abort"): Action.ABORT_JOB,
    ("POST", "/api/jobs/{job_id}/requeue"): Action.REQUEUE_JOB,
    ("POST", "/api/jobs/clean"): Action.CLEAN_JOBS,
    ("POST", "/api/jobs"): Action.ENQUEUE_JOB,
    ("GET", "/api/audit"): Action.VIEW,
}
_PARAMS = {
    "name": "no-such-package",
    "run_id": "999999",
    "job_id": "999999",
    "entry_id": "999999",
    "position": "1",
}


def _permit(route: APIRoute) -> Action | None:
    for dependency in route.dependant.dependencies:
        if isinstance(dependency.call, Permit):
            return dependency.call.action
    return None


def _routes(web: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """Every (method, path, route) the app serves, routers included (``web.routes`` nests them)."""
    found = [
        (method, str(context.path), context.original_route)
        for context in iter_route_contexts(web.routes)
        if isinstance(context.original_route, APIRoute)
        for method in sorted(context.methods or ())
    ]
    assert len(found) > 40, "the app's routes were not found; did FastAPI change how routers nest?"
    return found


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _PARAMS[m.group(1)], path)


def test_every_route_is_public_or_checks_the_action_it_is_expected_to(web: FastAPI) -> None:
    checked = {
        (method, path): _permit(route) for method, path, route in _routes(web) if (method, path) not in PUBLIC
    }
    assert checked == EXPECTED


def test_the_role_table_matches_the_seed(web: FastAPI) -> None:
    admin_only = {action for action, roles in PERMISSIONS.items() if roles == {Role.ADMIN}}
    assert admin_only == {
        Action.DELETE_PACKAGE,
        Action.ABORT_JOB,
        Action.CLEAN_JOBS,
        Action.CANCEL_RUN,
        Action.SHUT_DOWN_QUEUE,
        Action.CLEAN_RUNS,
    }
    assert {a for a, roles in PERMISSIONS.items() if Role.VIEWER in roles} == {Action.VIEW}


@pytest.mark.parametrize("role", list(Role))
def test_every_route_allows_exactly_the_roles_of_its_action(
    web: FastAPI,
    role: Role,
    browser_for: Callable[[Role], Browser],
    token_for: Callable[[Role], str],
) -> None:
    browser = browser_for(role)
    token = token_for(role)
    wrong = []
    # Signing out ends the session the other requests use: it goes last.
    for method, path, route in sorted(_routes(web), key=lambda r: r[1] == "/logout"):
        action = _permit(route)
        if action is None:
            continue
        url = _url(path)
        if path.startswith("/api/"):
            response = browser.client.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, json={}
            )
        elif method == "GET":
            response = browser.client.get(url, follow_redirects=False)
        else:
            response = browser.post(url)
        allowed = role in PERMISSIONS[action]
        denied = response.status_code == 403
        if allowed == denied or response.status_code in (401, 500):
            wrong.append(f"{method} {path} ({action}): {response.status_code}")
    assert wrong == []


def test_a_signed_out_visitor_is_sent_to_sign_in_by_every_page_and_gets_401_from_every_endpoint(
    web: FastAPI,
) -> None:
    client = TestClient(web)
    wrong = []
    for method, path, _route in _routes(web):
        if (method, path) in PUBLIC:
            continue
        response = client.request(method, _url(path), follow_redirects=False)
        expected = 401 if path.startswith("/api/") else 303
        if response.status_code != expected:
            wrong.append(f"{method} {path}: {response.status_code}")
    assert wrong == []
