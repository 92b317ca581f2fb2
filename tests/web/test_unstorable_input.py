"""Values no store can hold are refused at every web door with the reason, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.store.models import EntryRow, RunRow
from jqm_celery.web.roles import Role
from tests.web.conftest import Browser, field_errors

# Each kind of unstorable value, written as JSON text (NaN and Infinity are what Python's parser accepts),
# and the words of the error that names it.
UNSTORABLE = {
    "nul": ('["a\\u0000b"]', "NUL character"),
    "nul key": ('[{"a\\u0000": 1}]', "NUL character"),
    "nan": ("[NaN]", "which JSON cannot hold"),
    "infinity": ("[Infinity]", "which JSON cannot hold"),
    "huge int": (f"[{2**60}]", "beyond ±9007199254740991"),
    "too deep": ("[" * 40 + "]" * 40, "deeper than 32 levels"),
    "too large": (json.dumps(["x" * 70_000]), "above the limit of 65536"),
}
CASES = pytest.mark.parametrize(("args", "named"), UNSTORABLE.values(), ids=UNSTORABLE.keys())


@pytest.fixture
def api_for(web: FastAPI, token_for: Callable[[Role], str]) -> Callable[[Role], TestClient]:
    def client(role: Role) -> TestClient:
        made = TestClient(web)
        made.headers["Authorization"] = f"Bearer {token_for(role)}"
        made.headers["Content-Type"] = "application/json"
        return made

    return client


def _package(args: str) -> str:
    return '{"name": "nightly", "entries": [{"task": "billing.export", "args": ' + args + "}]}"


@CASES
def test_the_rest_api_refuses_a_package_with_an_unstorable_argument(
    api_for: Callable[[Role], TestClient], jqm: JobQueueManager, args: str, named: str
) -> None:
    response = api_for(Role.USER).post("/api/packages", content=_package(args))

    assert response.status_code == 422
    assert named in response.json()["detail"]
    assert jqm.packages() == []


@CASES
def test_the_rest_api_refuses_a_job_with_an_unstorable_argument(
    api_for: Callable[[Role], TestClient], jqm: JobQueueManager, args: str, named: str
) -> None:
    body = '{"task": "billing.export", "args": ' + args + "}"
    response = api_for(Role.USER).post("/api/jobs", content=body)

    assert response.status_code == 422
    assert named in response.json()["detail"]
    assert jqm.jobs() == []


def test_the_rest_api_refuses_a_run_order_past_the_column(
    api_for: Callable[[Role], TestClient], jqm: JobQueueManager
) -> None:
    body: dict[str, Any] = {"name": "nightly", "entries": [{"task": "billing.export", "run_order": 2**40}]}

    response = api_for(Role.USER).post("/api/packages", json=body)

    assert response.status_code == 422
    assert "run_order" in json.dumps(response.json()["detail"])
    assert jqm.packages() == []


@CASES
def test_the_package_form_refuses_an_unstorable_argument(
    admin: Browser, jqm: JobQueueManager, args: str, named: str
) -> None:
    entry = {"task": "billing.export", "run_order": "10", "args": args, "kwargs": "{}"}

    response = admin.post("/new-package", {"name": "nightly", **entry})

    assert response.status_code == 422
    assert any(named in message for message in field_errors(response.text).values())
    assert jqm.packages() == []


def test_the_package_form_refuses_a_run_order_past_the_column(admin: Browser, jqm: JobQueueManager) -> None:
    entry = {"task": "billing.export", "run_order": str(2**40), "args": "[]", "kwargs": "{}"}

    response = admin.post("/new-package", {"name": "nightly", **entry})

    assert response.status_code == 422
    assert any("out of range" in message for message in field_errors(response.text).values())
    assert jqm.packages() == []


def test_running_a_package_stored_with_an_unstorable_argument_is_refused_with_the_reason(
    api_for: Callable[[Role], TestClient], jqm: JobQueueManager
) -> None:
    jqm.save(Package("nightly", entries=[Entry("billing.export")]))
    jqm.activate("nightly")
    bad = {**Entry("billing.export").to_dict(), "args": ["\u0000"]}
    with jqm._store.transaction() as s:
        s.execute(update(EntryRow).values(definition=bad))

    response = api_for(Role.USER).post("/api/packages/nightly/run")

    assert response.status_code == 422
    assert "NUL character" in response.json()["detail"]
    with jqm._store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 0


@CASES
def test_the_add_a_job_form_refuses_an_unstorable_argument(
    admin: Browser, jqm: JobQueueManager, args: str, named: str
) -> None:
    response = admin.post("/jobs", {"task": "billing.export", "args": args})

    assert response.status_code == 422
    assert any(named in message for message in field_errors(response.text).values())
    assert jqm.jobs() == []
