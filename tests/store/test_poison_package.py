"""A package whose stored definition cannot become a run stops on its own; the others still fire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from jqm_celery import Entry, JobQueueManager, Package, PackageStatus, Recurrence
from jqm_celery.errors import ValidationError
from jqm_celery.events import Event
from jqm_celery.statuses import LogKind
from jqm_celery.store.models import EntryRow, PackageRow, RecurrenceRow, RunRow
from jqm_celery.store.schedule import fire_due
from tests.store.test_store import NOW

EVERY_MINUTE = Recurrence.every(timedelta(minutes=1), earliest_start=NOW)


def _active(jqm: JobQueueManager, name: str) -> None:
    jqm.save(Package(name, entries=[Entry("billing.export", args=[7])], recurrences=[EVERY_MINUTE]))
    jqm.activate(name)


def _poison(jqm: JobQueueManager, name: str, **changes: Any) -> None:
    """Write a bad entry straight into the store, as a version without today's checks could have."""
    with jqm._store.transaction() as s:
        package_id = s.scalar(select(PackageRow.id).where(PackageRow.name == name))
        bad = {**Entry("billing.export").to_dict(), **changes}
        s.execute(update(EntryRow).where(EntryRow.package_id == package_id).values(definition=bad))


def _status(jqm: JobQueueManager, name: str) -> PackageStatus:
    # Read from the row: the bad definition itself no longer builds.
    with jqm._store.transaction() as s:
        return PackageStatus(s.scalar(select(PackageRow.status).where(PackageRow.name == name)))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"args": ["\u0000"]}, "NUL character"),
        ({"run_order": 2**40}, "run_order 1099511627776 is out of range"),
        ({"kwargs": {"amount": 2**60}}, "beyond ±9007199254740991"),
    ],
    ids=["nul", "run order", "huge int"],
)
def test_a_bad_package_is_stopped_with_its_reason_and_the_good_one_still_fires(
    jqm: JobQueueManager, changes: dict[str, Any], named: str
) -> None:
    _active(jqm, "good")
    _active(jqm, "bad")
    _poison(jqm, "bad", **changes)
    seen: list[Event] = []
    jqm._store.listeners.append(seen.append)

    fired = fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))

    assert [plan.package for plan in fired.plans] == ["good"]
    assert _status(jqm, "good") is PackageStatus.ACTIVE
    assert _status(jqm, "bad") is PackageStatus.ERROR
    with jqm._store.transaction() as s:
        assert s.scalar(select(func.count()).where(RunRow.package_name == "bad")) == 0
    [stopped] = [e for e in seen if e.kind == LogKind.PACKAGE_STOPPED]
    assert stopped.package == "bad"
    assert named in (stopped.message or "")
    assert "activate it again" in (stopped.message or "")


def test_a_stopped_bad_package_is_not_claimed_again(
    jqm: JobQueueManager,
) -> None:
    _active(jqm, "good")
    _active(jqm, "bad")
    _poison(jqm, "bad", args=["\u0000"])
    fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))

    fired = fire_due(jqm._store, NOW + timedelta(minutes=2), grace=timedelta(seconds=10))

    # Only the good package's recurrence is due: the bad one's was cleared when it stopped.
    assert fired.claimed == 1
    assert _status(jqm, "bad") is PackageStatus.ERROR


def test_a_run_the_database_refuses_to_insert_stops_only_its_package(jqm: JobQueueManager) -> None:
    if jqm._store.engine.dialect.name != "postgresql":
        pytest.skip("a trigger that refuses a row needs PostgreSQL")
    _active(jqm, "good")
    _active(jqm, "refused")
    with jqm._store.engine.begin() as conn:
        # A real database error on one package's job rows, as PostgreSQL raises for a value it cannot hold.
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'integer out of range' USING ERRCODE = 'numeric_value_out_of_range'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_job BEFORE INSERT ON jqm_job FOR EACH ROW "
            "WHEN (NEW.package_name = 'refused') EXECUTE FUNCTION refuse_job()"
        )
    seen: list[Event] = []
    jqm._store.listeners.append(seen.append)

    fired = fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))

    assert [plan.package for plan in fired.plans] == ["good"]
    assert _status(jqm, "refused") is PackageStatus.ERROR
    [stopped] = [e for e in seen if e.kind == LogKind.PACKAGE_STOPPED]
    assert "integer out of range" in (stopped.message or "")


def test_a_package_whose_stored_recurrence_does_not_read_is_stopped_and_the_good_one_fires(
    jqm: JobQueueManager,
) -> None:
    _active(jqm, "good")
    _active(jqm, "bad")
    with jqm._store.transaction() as s:
        package_id = s.scalar(select(PackageRow.id).where(PackageRow.name == "bad"))
        s.execute(
            update(RecurrenceRow)
            .where(RecurrenceRow.package_id == package_id)
            .values(spec={"kind": "CRON", "expression": "61 * * * *", "tz": "UTC"})
        )

    fired = fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))

    assert [plan.package for plan in fired.plans] == ["good"]
    assert _status(jqm, "bad") is PackageStatus.ERROR


def test_a_stopped_bad_package_is_fixed_by_saving_its_definition_again(jqm: JobQueueManager) -> None:
    _active(jqm, "bad")
    _poison(jqm, "bad", args=["\u0000"])
    fire_due(jqm._store, NOW + timedelta(minutes=1), grace=timedelta(seconds=10))

    jqm.save(Package("bad", entries=[Entry("billing.export", args=[7])], recurrences=[EVERY_MINUTE]))
    jqm.activate("bad")

    assert jqm.package("bad").status is PackageStatus.ACTIVE


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"args": ["\u0000"]}, "NUL character"), ({"run_order": 2**40}, "out of range")],
    ids=["nul", "run order"],
)
def test_reading_a_bad_package_names_it_the_bad_value_and_the_way_out(
    jqm: JobQueueManager, changes: dict[str, Any], named: str
) -> None:
    _active(jqm, "bad")
    _poison(jqm, "bad", **changes)

    with pytest.raises(ValidationError) as refused:
        jqm.package("bad")

    message = str(refused.value)
    assert message.startswith("package 'bad' as stored cannot be read")
    assert named in message
    assert "Save a corrected definition" in message


def test_a_bad_package_that_cannot_be_read_can_be_deleted(jqm: JobQueueManager) -> None:
    jqm.save(Package("bad", entries=[Entry("billing.export", args=[7])]))
    _poison(jqm, "bad", args=["\u0000"])

    jqm.delete("bad")

    assert "bad" not in jqm.package_names()
