"""Bad recurrences through the public API: a clear error naming the fix, and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery

from jqm_celery import (
    Entry,
    JobQueueManager,
    NotFoundError,
    Package,
    PackageStatus,
    Recurrence,
    ValidationError,
)


@pytest.fixture
def jqm(tmp_path: Path) -> JobQueueManager:
    app = Celery("jqm-input")
    app.conf.jqm_database_url = f"sqlite:///{tmp_path / 'jqm.sqlite'}"

    @app.task(name="input.noop", shared=False)
    def noop() -> None:
        return None

    return JobQueueManager(app)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Recurrence.cron("61 * * * *"), "minute value 61 is out of range"),
        (lambda: Recurrence.cron("0 2 * *"), "expected 5 fields"),
        (lambda: Recurrence.cron("0 2 * * *", tz="Europe/Amsterdm"), "did you mean 'Europe/Amsterdam'"),
        (
            lambda: Recurrence.weekly(days="mon-fri", start="18:00", end="08:00", every=timedelta(hours=1)),
            "end 08:00 is before start 18:00",
        ),
        (lambda: Recurrence.every(timedelta(0)), "must be positive"),
        (lambda: Recurrence.every(timedelta(minutes=-5)), "must be positive"),
        (lambda: Recurrence.weekly(days="mon,tuesdy", start="08:00"), "did you mean 'tuesday'"),
    ],
)
def test_a_bad_recurrence_is_refused_and_no_package_is_written(
    jqm: JobQueueManager, make: Callable[[], Recurrence], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        jqm.save(Package("bad", entries=[Entry("input.noop")], recurrences=[make()]))

    assert jqm.packages() == []


def test_a_once_recurrence_in_the_past_is_refused_at_activation(jqm: JobQueueManager) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    jqm.save(Package("late", entries=[Entry("input.noop")], recurrences=[Recurrence.once(past)]))

    with pytest.raises(ValidationError, match="is in the past"):
        jqm.activate("late")

    state = jqm.package("late")
    assert state.status is PackageStatus.DRAFT
    assert state.next_run_at is None


def test_recurrences_of_a_package_that_does_not_exist_are_refused(jqm: JobQueueManager) -> None:
    jqm.save(Package("nightly", entries=[Entry("input.noop")]))

    with pytest.raises(NotFoundError, match="package 'nightlly' does not exist; did you mean 'nightly'"):
        jqm.next_runs("nightlly")
    with pytest.raises(NotFoundError, match="does not exist"):
        jqm.activate("nightlly")


def test_next_runs_merges_the_recurrences_as_aware_datetimes(jqm: JobQueueManager) -> None:
    jqm.save(
        Package(
            "merged",
            entries=[Entry("input.noop")],
            recurrences=[Recurrence.every(timedelta(hours=4)), Recurrence.cron("0 2 * * *")],
        )
    )

    # A day holds seven fires, at 00:00, 04:00, … 20:00 UTC and at 02:00: any seven in a row hold the
    # one at 02:00, whatever the time of day the test runs.
    runs = jqm.next_runs("merged", count=7)

    assert len(runs) == 7
    assert runs == sorted(runs)
    assert all(at.tzinfo is not None and at > datetime.now(UTC) for at in runs)
    assert sorted({at.hour for at in runs}) == [0, 2, 4, 8, 12, 16, 20]
