"""Many rows in one go: ids come back in the order of the rows, and rows of different shapes all land."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from jqm_celery.statuses import JobStatus
from jqm_celery.store import Store, writers
from jqm_celery.store.models import JobRow, LogEntryRow, RunRow

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def _run(name: str) -> dict[str, object]:
    return {
        "package_name": name,
        "status": "RUNNING",
        "trigger": "test",
        "on_error": "STOP",
        "created_at": NOW,
        "started_at": NOW,
    }


def test_ids_come_back_in_the_order_of_the_rows(store: Store) -> None:
    names = [f"p{index}" for index in range(7)]
    with store.transaction() as s:
        first = writers.of(s).insert_rows(s.connection(), RunRow, [_run("before")])
        ids = writers.of(s).insert_rows(s.connection(), RunRow, [_run(name) for name in names])
    assert len(set(ids)) == len(names)
    assert min(ids) > first[0]
    with store.transaction() as s:
        stored = dict(s.execute(select(RunRow.id, RunRow.package_name).where(RunRow.id.in_(ids))).all())
    assert [stored[run_id] for run_id in ids] == names


def test_rows_that_set_different_columns_keep_each_of_their_values(store: Store) -> None:
    common = {"kind": "RUN_STARTED", "status": "RUNNING", "started_at": NOW, "finished_at": NOW}
    rows = [
        {**common, "package_name": "skipped", "message": "no run"},
        {**common, "package_name": "started", "message": "run", "run_id": 41},
        {**common, "package_name": "retried", "message": "again", "run_id": 42, "retry": 3},
    ]
    with store.transaction() as s:
        writers.of(s).add_rows(s.connection(), LogEntryRow, rows)
    with store.transaction() as s:
        stored = {
            row.package_name: (row.run_id, row.retry, row.message)
            for row in s.scalars(select(LogEntryRow).where(LogEntryRow.kind == "RUN_STARTED"))
        }
    assert stored == {"skipped": (None, 0, "no run"), "started": (41, 0, "run"), "retried": (42, 3, "again")}


def test_rows_whose_ids_are_wanted_must_all_set_the_same_columns(store: Store) -> None:
    with store.transaction() as s, pytest.raises(ValueError, match="same columns"):
        writers.of(s).insert_rows(s.connection(), RunRow, [_run("a"), {**_run("b"), "stop_reason": "x"}])


def test_json_and_time_columns_come_back_as_they_went_in(store: Store) -> None:
    later = NOW.astimezone(ZoneInfo("Europe/Amsterdam"))
    job = {
        "task": "t",
        "args": [1, "two", {"three": [3]}],
        "kwargs": {"k": None, "b": 'quote " and ünïcode\n', "a": 0.1},
        "retry_policy": {},
        "soft_time_limit_s": 2.5,
        "status": JobStatus.QUEUED,
        "created_at": later,
        "not_before": None,
    }
    with store.transaction() as s:
        [first, second] = writers.of(s).insert_rows(
            s.connection(), JobRow, [job, {**job, "args": [], "not_before": later}]
        )
    with store.transaction() as s:
        rows = {row.id: row for row in s.scalars(select(JobRow).where(JobRow.id.in_([first, second])))}
    first_row = rows[first]
    assert (first_row.args, first_row.kwargs, first_row.not_before) == (job["args"], job["kwargs"], None)
    assert list(rows[first].kwargs) == ["k", "b", "a"], "a JSON object keeps its keys' order"
    assert rows[first].soft_time_limit_s == 2.5
    assert (rows[second].args, rows[second].not_before) == ([], NOW)
    assert (rows[first].created_at, rows[first].status) == (NOW, "QUEUED")
    assert (rows[first].retry, rows[first].attempts, rows[first].description) == (0, 0, ""), "defaults"


def test_rows_are_updated_by_id_each_with_its_own_values(store: Store) -> None:
    later = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    with store.transaction() as s:
        ids = writers.of(s).insert_rows(s.connection(), RunRow, [_run(name) for name in ("a", "b", "c")])
        writers.of(s).update_rows(
            s.connection(),
            RunRow,
            [
                {"id": ids[0], "status": "SUCCEEDED", "finished_at": later},
                {"id": ids[2], "status": "FAILED", "finished_at": None},
            ],
        )
    with store.transaction() as s:
        rows = {row.id: (row.status, row.finished_at) for row in s.scalars(select(RunRow))}
    assert rows == {ids[0]: ("SUCCEEDED", NOW), ids[1]: ("RUNNING", None), ids[2]: ("FAILED", None)}


def test_rows_are_updated_by_another_key_every_row_that_holds_it(store: Store) -> None:
    with store.transaction() as s:
        ids = writers.of(s).insert_rows(s.connection(), RunRow, [_run(name) for name in ("a", "a", "b", "c")])
        writers.of(s).update_rows(
            s.connection(),
            RunRow,
            [{"package_name": "a", "status": "SUCCEEDED"}, {"package_name": "c", "status": "FAILED"}],
            key="package_name",
        )
    with store.transaction() as s:
        rows = {row.id: row.status for row in s.scalars(select(RunRow))}
    assert rows == {ids[0]: "SUCCEEDED", ids[1]: "SUCCEEDED", ids[2]: "RUNNING", ids[3]: "FAILED"}
