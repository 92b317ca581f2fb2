"""The REST API: the same reads and actions as the pages, as JSON, with the errors mapped to statuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jqm_celery import Entry, JobQueueManager, Package, ValidationError
from jqm_celery.queue_records import AuditAction
from jqm_celery.web.roles import Role
from tests.store.conftest import FakeClock

PACKAGE = {
    "name": "nightly",
    "on_error": "CONTINUE",
    "entries": [
        {"task": "billing.export", "run_order": 10},
        {"task": "billing.upload", "args": [7], "run_order": 20, "retry": {"max_retries": 2}},
    ],
    "recurrences": [{"kind": "CRON", "expression": "0 2 * * *", "tz": "Europe/Amsterdam"}],
    "notifications": [{"type": "email", "recipients": ["ops@example.com"], "on": ["RUN_FAILED"]}],
}


@pytest.fixture
def api(web: FastAPI, token_for: Callable[[Role], str]) -> TestClient:
    client = TestClient(web)
    client.headers["Authorization"] = f"Bearer {token_for(Role.ADMIN)}"
    return client


def test_a_package_is_created_read_activated_and_listed(api: TestClient, jqm: JobQueueManager) -> None:
    created = api.post("/api/packages", json=PACKAGE)
    assert created.status_code == 201
    assert created.json()["entries"][1]["retry"]["max_retries"] == 2
    assert len(created.json()["next_runs"]) == 10
    activated = api.post("/api/packages/nightly/activate").json()
    assert activated["status"] == "ACTIVE"
    assert activated["next_run_at"].startswith("2026-11-22T01:00")  # 02:00 in Amsterdam
    listing = api.get("/api/packages", params={"status": "ACTIVE"}).json()
    assert (listing["total"], listing["packages"][0]["name"]) == (1, "nightly")
    assert jqm.audit()[-1].actor == "ann"


def test_errors_map_to_404_409_and_422(api: TestClient) -> None:
    assert api.get("/api/packages/nope").status_code == 404
    api.post("/api/packages", json=PACKAGE)
    api.post("/api/packages/nightly/activate")
    locked = api.put("/api/packages/nightly", json=PACKAGE | {"on_error": "STOP"})
    assert locked.status_code == 409
    assert "put it on hold first" in locked.json()["detail"]
    typo = api.post(
        "/api/packages", json=PACKAGE | {"name": "other", "entries": [{"task": "billing.uplaod"}]}
    )
    assert typo.status_code == 422
    assert "did you mean 'billing.upload'" in typo.json()["detail"]
    assert api.get("/api/runs/2147483648").status_code == 422


def test_log_entries_filter_by_date(api: TestClient, jqm: JobQueueManager, clock: FakeClock) -> None:
    api.post("/api/packages", json=PACKAGE)
    jqm._store.create_run("nightly", "test", clock.now(), queue_if_busy=True)
    day = clock.now().date().isoformat()
    assert len(api.get("/api/log-entries", params={"since": day, "until": day}).json()) >= 1
    assert api.get("/api/log-entries", params={"until": "2026-11-20"}).json() == []


def test_the_openapi_document_lists_the_api_and_not_the_pages(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/packages/{name}/activate" in paths
    assert not any(not path.startswith("/api/") for path in paths)


def test_adding_a_job_is_checked_as_jqm_enqueue_checks_it(api: TestClient, jqm: JobQueueManager) -> None:
    jqm.define_queue("reports", 2)
    typo = api.post("/api/jobs", json={"task": "billing.exprot"})
    queue = api.post("/api/jobs", json={"task": "billing.export", "queue": "reprots"})
    negative = api.post("/api/jobs", json={"task": "billing.export", "delay_s": -1})
    assert (typo.status_code, queue.status_code, negative.status_code) == (422, 422, 422)
    assert "did you mean 'billing.export'?" in typo.json()["detail"]
    assert "did you mean 'reports'?" in queue.json()["detail"]
    assert jqm.jobs() == []


def test_a_viewer_may_not_add_a_job(web: FastAPI, token_for: Callable[[Role], str]) -> None:
    client = TestClient(web)
    client.headers["Authorization"] = f"Bearer {token_for(Role.VIEWER)}"
    assert client.post("/api/jobs", json={"task": "billing.export"}).status_code == 403


def test_durations_read_as_an_operator_reads_them() -> None:
    from jqm_celery.web.templating import duration

    assert [duration(timedelta(seconds=s)) for s in (0.25, 12.34, 184, 7500)] == [
        "0.25 s",
        "12.3 s",
        "3 min 4 s",
        "2 h 5 min",
    ]


def test_the_cues_and_one_log_entry_are_read_through_the_api(api: TestClient, jqm: JobQueueManager) -> None:
    cues = api.get("/api/cues").json()
    assert {
        key: cues[key] for key in ("failed_runs", "failed_jobs", "running_jobs", "packages_in_error")
    } == {
        "failed_runs": 0,
        "failed_jobs": 0,
        "running_jobs": 0,
        "packages_in_error": 0,
    }
    missing = api.get("/api/log-entries/999999")
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        "log entry 999999 does not exist; it may have been cleaned",
    )


def test_a_queue_is_paused_resumed_and_shut_down_through_the_api_and_a_user_may_not_shut_it_down(
    api: TestClient, web: FastAPI, jqm: JobQueueManager, token_for: Callable[[Role], str]
) -> None:
    jqm.define_queue("reports", 2)
    user = TestClient(web)
    user.headers["Authorization"] = f"Bearer {token_for(Role.USER)}"

    paused = user.post("/api/queues/reports/pause")
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    assert api.get("/api/queues").json()[0] | {"workers": []} == {
        "name": "reports", "pool_size": 2, "queued": 0, "delayed": 0, "running": 0, "retrying": 0,
        "failed": 0, "paused": True, "workers": [],
    }  # fmt: skip
    assert user.post("/api/queues/reports/resume").json()["paused"] is False
    assert user.post("/api/queues/reports/shutdown").status_code == 403
    assert api.post("/api/queues/reports/shutdown").json()["paused"] is True
    unknown = api.post("/api/queues/reprots/pause")
    assert (unknown.status_code, unknown.json()["detail"]) == (
        422,
        "queue 'reprots' is not defined; did you mean 'reports'?; define it first: "
        "jqm.define_queue('reprots', pool_size=4)",
    )
    actions = [e["action"] for e in api.get("/api/audit").json()[:3]]
    assert actions == ["SHUT_DOWN_QUEUE", "RESUME_QUEUE", "PAUSE_QUEUE"]


def test_finished_runs_are_cleaned_through_the_api_and_a_run_in_flight_stays(
    api: TestClient, jqm: JobQueueManager, clock: FakeClock
) -> None:
    jqm.save(Package("p", entries=[Entry("billing.export")]))
    _, finished, _ = jqm._store.start_run("p", "test", clock.now(), queue_if_busy=False)
    jqm._store.fail_dispatch(finished.id, clock.now(), "the broker refused it")
    _, in_flight, _ = jqm._store.start_run("p", "test", clock.now(), queue_if_busy=False)
    clock.advance(timedelta(days=2))

    cleaned = api.post("/api/runs/clean", json={"older_than_s": 86400})
    assert cleaned.status_code == 200
    assert cleaned.json()["runs"] == 1
    assert api.get(f"/api/runs/{finished.id}").status_code == 404
    assert api.get(f"/api/runs/{in_flight.id}").status_code == 200
    assert api.post("/api/runs/clean", json={"older_than_s": -1}).status_code == 422


def test_runs_jobs_and_audit_page_back_to_their_last_page_with_the_next_cursor_header(
    api: TestClient, jqm: JobQueueManager, clock: FakeClock
) -> None:
    jqm.save(Package("p", entries=[Entry("billing.export")]))
    for _ in range(7):
        _, run, _ = jqm._store.start_run("p", "test", clock.now(), queue_if_busy=False)
        jqm._store.fail_dispatch(run.id, clock.now(), "the broker refused it")
    for n in range(7):
        jqm._job_queue.record("ann", AuditAction.SAVE, "package 'p'", package="p", detail=f"version {n}")

    lists = [
        ("/api/runs", {"package": "p"}, 7),
        ("/api/jobs", {"include_runs": "true"}, 7),
        ("/api/audit", {"package": "p"}, 8),  # and the package's CREATE
    ]
    for path, filters, count in lists:
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            cursor_param = {"before_id": cursor} if cursor else {}
            answer = api.get(path, params={**filters, "limit": 3, **cursor_param})
            assert answer.status_code == 200, answer.text
            seen += [row["id"] for row in answer.json()]
            pages += 1
            cursor = answer.headers.get("X-Next-Before-Id")
            if cursor is None:
                break
        assert (len(seen), pages) == (count, 3), path
        assert seen == sorted(seen, reverse=True)


def test_a_bad_cursor_or_time_range_is_refused_with_what_to_pass(
    api: TestClient, jqm: JobQueueManager
) -> None:
    assert api.get("/api/runs", params={"before_id": "abc"}).status_code == 422
    assert api.get("/api/jobs", params={"before_id": 0}).status_code == 422
    backwards = api.get("/api/audit", params={"since": "2026-12-02", "until": "2026-12-01"})
    assert backwards.status_code == 422
    assert "since (2026-12-02 00:00) must be before until" in backwards.json()["detail"]
    assert api.get("/api/runs", params={"until": "9999-12-31"}).status_code == 200, "the last day: no bound"
    with pytest.raises(
        ValidationError, match=r"before_id must be a whole number ≥ 1 — the id of the last row"
    ):
        jqm.runs(before_id=-5)
