"""Recurrences as django-celery-beat rows (pure translation, no Django)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from beat_schedules.periodic import Crontab, package_of, periodic_specs, recurrence_specs, row_name
from jqm_celery import Entry, Package, Recurrence, ValidationError

NOW = datetime(2026, 3, 2, 9, 7, tzinfo=UTC)


def _crontabs(recurrence: Recurrence) -> list[Crontab]:
    specs = recurrence_specs("billing", 1, recurrence, NOW)
    return [spec.crontab for spec in specs if spec.crontab is not None]


def test_a_cron_recurrence_keeps_its_fields_and_time_zone() -> None:
    [spec] = recurrence_specs("billing", 1, Recurrence.cron("*/15 2 * * mon-fri", tz="Europe/Amsterdam"), NOW)

    assert spec.name == "jqm:billing:1"
    assert spec.crontab == Crontab("0,15,30,45", "2", "*", "*", "1,2,3,4,5", "Europe/Amsterdam")
    assert spec.last_run_at == NOW


def test_a_cron_alias_is_expanded() -> None:
    assert _crontabs(Recurrence.cron("@daily")) == [Crontab("0", "0", "*", "*", "*", "UTC")]


def test_a_cron_restricting_both_day_fields_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"recurrence 1 .*restrict only one of the two fields"):
        recurrence_specs("billing", 1, Recurrence.cron("0 0 1 * mon"), NOW)


def test_an_interval_starts_from_jqm_s_previous_instant_to_keep_its_phase() -> None:
    [spec] = recurrence_specs("billing", 2, Recurrence.every(timedelta(hours=4)), NOW)

    assert spec.interval == (4, "hours")
    assert spec.last_run_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_an_interval_of_fractional_seconds_is_stored_in_microseconds() -> None:
    [spec] = recurrence_specs("billing", 1, Recurrence.every(timedelta(seconds=1.5)), NOW)

    assert spec.interval == (1_500_000, "microseconds")


def test_a_once_recurrence_is_a_clocked_row_and_finished_once_past() -> None:
    at = NOW + timedelta(days=1)
    [future] = recurrence_specs("billing", 1, Recurrence.once(at), NOW)
    [past] = recurrence_specs("billing", 1, Recurrence.once(at), at + timedelta(seconds=1))

    assert (future.clocked, future.finished) == (at, False)
    assert past.finished


def test_earliest_start_and_expires_map_to_start_time_and_expires_with_a_second_of_slack() -> None:
    start, end = NOW + timedelta(days=1), NOW + timedelta(days=30)
    [spec] = recurrence_specs(
        "billing", 1, Recurrence.cron("0 2 * * *", earliest_start=start, expires=end), NOW
    )

    assert (spec.start_time, spec.expires, spec.last_run_at) == (start, end + timedelta(seconds=1), start)


def test_a_weekly_window_with_a_step_that_divides_an_hour_is_one_crontab_when_it_spans_whole_hours() -> None:
    window = Recurrence.weekly("mon-fri", start="08:00", end="18:30", every=timedelta(minutes=30))

    assert _crontabs(window) == [
        Crontab("0,30", "8,9,10,11,12,13,14,15,16,17,18", "*", "*", "1,2,3,4,5", "UTC")
    ]


def test_a_weekly_window_starting_off_the_hour_splits_into_first_whole_and_last_hours() -> None:
    window = Recurrence.weekly(
        "sat", start="08:20", end="10:25", every=timedelta(minutes=20), tz="Asia/Tokyo"
    )

    assert _crontabs(window) == [
        Crontab("20,40", "8", "*", "*", "6", "Asia/Tokyo"),
        Crontab("0,20,40", "9", "*", "*", "6", "Asia/Tokyo"),
        Crontab("0,20", "10", "*", "*", "6", "Asia/Tokyo"),
    ]


def test_a_weekly_window_with_a_step_that_does_not_divide_an_hour_is_one_crontab_per_minute_pattern() -> None:
    window = Recurrence.weekly("mon", start="08:00", end="11:00", every=timedelta(minutes=45))

    # 08:00 08:45 09:30 10:15 11:00
    assert _crontabs(window) == [
        Crontab("0,45", "8", "*", "*", "1", "UTC"),
        Crontab("30", "9", "*", "*", "1", "UTC"),
        Crontab("15", "10", "*", "*", "1", "UTC"),
        Crontab("0", "11", "*", "*", "1", "UTC"),
    ]


def test_several_crontabs_of_one_recurrence_are_named_by_part() -> None:
    window = Recurrence.weekly("mon", start="08:20", end="09:30", every=timedelta(minutes=20))

    names = [spec.name for spec in recurrence_specs("billing", 3, window, NOW)]

    assert names == ["jqm:billing:3.1", "jqm:billing:3.2"]
    assert {package_of(name) for name in names} == {"billing"}


def test_a_weekly_window_without_every_fires_once_a_day_at_its_start() -> None:
    assert _crontabs(Recurrence.weekly("sun", start="06:45")) == [Crontab("45", "6", "*", "*", "0", "UTC")]


def test_a_weekly_window_every_few_seconds_is_refused() -> None:
    window = Recurrence.weekly("mon", start="08:00", end="09:00", every=timedelta(seconds=90))

    with pytest.raises(ValidationError, match=r"runs every 0:01:30 .*whole number of minutes"):
        recurrence_specs("billing", 1, window, NOW)


def test_every_recurrence_of_a_package_gets_its_position() -> None:
    package = Package(
        "billing",
        entries=[Entry("billing.run")],
        recurrences=[Recurrence.cron("0 2 * * *"), Recurrence.every(timedelta(hours=1))],
    )

    assert [spec.name for spec in periodic_specs(package, NOW)] == ["jqm:billing:1", "jqm:billing:2"]


@pytest.mark.parametrize(
    "name", ["celery.backend_cleanup", "jqm:billing", "jqm:billing:x", "other:billing:1"]
)
def test_rows_the_bridge_did_not_name_belong_to_no_package(name: str) -> None:
    assert package_of(name) is None


def test_a_row_name_gives_back_its_package() -> None:
    assert package_of(row_name("nightly.billing-2", 12)) == "nightly.billing-2"
