"""Hostile input at the door: JSON of the wrong type, URL numbers in other spellings, the secret's sources,
and the sign-in limits' sliding window. The attacks over a real socket are in
tests/integration/test_web_security.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jqm_celery import Entry, JobQueueManager, Package
from jqm_celery.errors import ConfigError
from jqm_celery.web.config import SECRET_ENV, SECRET_FILE_ENV, WebSettings, session_secret
from jqm_celery.web.roles import Role
from jqm_celery.web.throttle import LoginThrottle

_ENTRY = {"task": "billing.export"}
_PACKAGE = {"name": "typed", "entries": [_ENTRY]}

#: (method, url, body, the field the 422 names): each body is right but for one value of the wrong type.
CONFUSED_BODIES: list[tuple[str, str, Any, str]] = [
    ("POST", "/api/jobs/clean", {"older_than_s": False}, "older_than_s"),
    ("POST", "/api/runs/clean", {"older_than_s": True}, "older_than_s"),
    ("POST", "/api/runs/clean", {"older_than_s": "7776000"}, "older_than_s"),
    ("POST", "/api/jobs/clean", {"older_than_s": [5]}, "older_than_s"),
    ("POST", "/api/jobs/clean", [{"older_than_s": 5}], "body"),
    ("POST", "/api/jobs/clean", "older_than_s=5", "body"),
    ("POST", "/api/packages", [_PACKAGE], "body"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": _ENTRY}, "entries"),
    ("POST", "/api/packages", {**_PACKAGE, "allow_overlap": "yes"}, "allow_overlap"),
    ("POST", "/api/packages", {**_PACKAGE, "allow_overlap": 1}, "allow_overlap"),
    ("POST", "/api/packages", {**_PACKAGE, "on_error": 0}, "on_error"),
    ("POST", "/api/packages", {**_PACKAGE, "description": 7}, "description"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "run_order": "10"}]}, "run_order"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "run_order": 10.0}]}, "run_order"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "run_order": False}]}, "run_order"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "args": "7"}]}, "args"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "kwargs": []}]}, "kwargs"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "retry": [3]}]}, "retry"),
    ("POST", "/api/packages", {**_PACKAGE, "entries": [{**_ENTRY, "retry": {"jitter": 1}}]}, "jitter"),
    (
        "POST",
        "/api/packages",
        {**_PACKAGE, "entries": [{**_ENTRY, "retry": {"max_retries": True}}]},
        "max_retries",
    ),
    ("POST", "/api/packages", {**_PACKAGE, "recurrences": [{"kind": "ONCE", "at": 1_800_000_000}]}, "at"),
    ("POST", "/api/packages", {**_PACKAGE, "recurrences": [{"kind": "EVERY", "every_s": "60"}]}, "every_s"),
    ("POST", "/api/packages", {**_PACKAGE, "notifications": {"on": ["RUN_FAILED"]}}, "notifications"),
    ("PUT", "/api/packages/typed", {**_PACKAGE, "catch_up": None}, "catch_up"),
    ("POST", "/api/jobs", {**_ENTRY, "delay_s": False}, "delay_s"),
    ("POST", "/api/jobs", {**_ENTRY, "delay_s": "60"}, "delay_s"),
    ("POST", "/api/jobs", {**_ENTRY, "time_limit_s": {"s": 5}}, "time_limit_s"),
    ("POST", "/api/jobs", {**_ENTRY, "queue": ["reports"]}, "queue"),
    ("POST", "/api/jobs", {"task": True}, "task"),
]


@pytest.mark.parametrize(("method", "url", "body", "field"), CONFUSED_BODIES)
def test_a_body_value_of_the_wrong_json_type_is_refused_naming_it_and_nothing_is_written(
    web: FastAPI,
    jqm: JobQueueManager,
    token_for: Callable[[Role], str],
    method: str,
    url: str,
    body: Any,
    field: str,
) -> None:
    jqm.save(Package("kept", entries=[Entry("billing.export")]))
    client = TestClient(web)
    headers = {"Authorization": f"Bearer {token_for(Role.ADMIN)}"}
    response = client.request(method, url, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert [p.name for p in jqm.packages()] == ["kept"]
    assert jqm.jobs() == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs?limit=1.0",
        "/api/runs?limit=true",
        "/api/runs?limit=%205",
        "/api/runs?before_id=1_000",
        "/api/runs?before_id=1e3",
        "/api/runs/1.0",
        "/api/runs/99999999999",
        "/api/jobs/0x10",
        "/api/jobs?include_runs=2",
        "/api/log-entries?run_id=-1",
        "/api/log-entries/99999999999999999999",
        "/api/packages?offset=-0",
        "/api/runs?since=1800000000",
        "/api/audit?until=tomorrow",
        "/api/packages/kept/run?queue=maybe",
    ],
)
def test_a_url_number_flag_or_day_in_another_spelling_is_refused(
    web: FastAPI, jqm: JobQueueManager, token_for: Callable[[Role], str], url: str
) -> None:
    jqm.save(Package("kept", entries=[Entry("billing.export")]))
    client = TestClient(web)
    method = "POST" if url.startswith("/api/packages/kept/run") else "GET"
    response = client.request(method, url, headers={"Authorization": f"Bearer {token_for(Role.ADMIN)}"})
    assert response.status_code == 422, response.text
    assert jqm.runs() == []


def test_the_secret_comes_from_the_environment_then_a_file_then_the_conf_then_the_store(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "web-secret"
    secret_file.write_text("from-the-file-" + "x" * 40 + "\n")
    conf = {"jqm_web_secret": "from-the-conf-" + "y" * 40}

    def stored() -> str:
        return "from-the-store"

    env = {SECRET_ENV: "from-the-env-" + "z" * 40, SECRET_FILE_ENV: str(secret_file)}
    assert session_secret(conf, env, stored).source == SECRET_ENV
    from_file = session_secret(conf, {SECRET_FILE_ENV: str(secret_file)}, stored)
    assert (from_file.value, from_file.warning()) == ("from-the-file-" + "x" * 40, None)
    assert session_secret(conf, {}, stored).source == "jqm_web_secret"
    in_store = session_secret({}, {}, stored)
    assert in_store.value == "from-the-store"
    warning = in_store.warning()
    assert warning is not None
    assert "anyone who can read the database" in warning
    assert SECRET_FILE_ENV in warning


def test_a_secret_file_that_cannot_be_read_or_is_empty_stops_the_start_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    for path, problem in [(tmp_path / "missing", "cannot be read"), (tmp_path / "empty", "is empty")]:
        with pytest.raises(ConfigError, match=problem) as refused:
            session_secret({}, {SECRET_FILE_ENV: str(path)}, lambda: "unused")
        assert "secrets.token_urlsafe" in str(refused.value)


def test_a_short_secret_is_used_with_a_warning() -> None:
    short = session_secret({"jqm_web_secret": "hunter2"}, {}, lambda: "unused")
    assert short.value == "hunter2"
    assert "7 characters long" in (short.warning() or "")


@pytest.mark.parametrize("value", [0, -1, "1mb", True, float("nan")])
def test_a_web_limit_that_is_not_a_positive_number_stops_the_start(value: object) -> None:
    with pytest.raises(ConfigError, match="jqm_web_max_body_bytes must be a positive number"):
        WebSettings.from_conf({"jqm_web_max_body_bytes": value})


def test_failed_sign_ins_of_an_account_wait_for_the_oldest_to_leave_the_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(per_account=3, per_address=100, window_s=60, clock=lambda: now[0])
    for second in range(3):
        assert throttle.wait_s("ann", f"10.0.0.{second}") == 0
        throttle.failed("ann", f"10.0.0.{second}")
        now[0] += 1
    assert throttle.wait_s("ann", "10.0.0.9") == 57
    assert throttle.wait_s("bob", "10.0.0.9") == 0
    now[0] += 57
    assert throttle.wait_s("ann", "10.0.0.9") == 0


def test_failed_sign_ins_from_an_address_count_over_every_account_and_a_success_does_not_clear_them() -> None:
    throttle = LoginThrottle(per_account=100, per_address=2, window_s=60, clock=lambda: 0.0)
    throttle.failed("ann", "10.0.0.1")
    throttle.failed("bob", "10.0.0.1")
    throttle.succeeded("bob")
    assert throttle.wait_s("carl", "10.0.0.1") == 60
    assert throttle.wait_s("carl", "10.0.0.2") == 0
