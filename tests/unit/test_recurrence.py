"""Recurrence maths: every kind, bounds, preview, bad input, DST at the 2026 and 2027 transitions."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jqm_celery.errors import ValidationError
from jqm_celery.recurrence import CatchUp, Recurrence, next_runs

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
SYD = ZoneInfo("Australia/Sydney")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """The UTC instant of a local time that exists (so expectations stay explicit).

    In UTC, because an aware datetime in a repeated hour never equals one in another zone (PEP 495).
    """
    local = datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[arg-type, misc]
    assert local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None)
    return local.astimezone(UTC)


def fires(rec: Recurrence, after: datetime, count: int) -> list[datetime]:
    return [fire for fire, _ in next_runs([rec], after, count)]


# Spring-forward days: the local hour 02:00-03:00 does not exist.
GAPS = [
    pytest.param(AMS, date(2026, 3, 29), id="Amsterdam-2026"),
    pytest.param(AMS, date(2027, 3, 28), id="Amsterdam-2027"),
    pytest.param(NYC, date(2026, 3, 8), id="New_York-2026"),
    pytest.param(NYC, date(2027, 3, 14), id="New_York-2027"),
    pytest.param(SYD, date(2026, 10, 4), id="Sydney-2026"),
    pytest.param(SYD, date(2027, 10, 3), id="Sydney-2027"),
]
# Fall-back days: the local hour starting at the given hour occurs twice.
FOLDS = [
    pytest.param(AMS, date(2026, 10, 25), 2, id="Amsterdam-2026"),
    pytest.param(AMS, date(2027, 10, 31), 2, id="Amsterdam-2027"),
    pytest.param(NYC, date(2026, 11, 1), 1, id="New_York-2026"),
    pytest.param(NYC, date(2027, 11, 7), 1, id="New_York-2027"),
    pytest.param(SYD, date(2026, 4, 5), 2, id="Sydney-2026"),
    pytest.param(SYD, date(2027, 4, 4), 2, id="Sydney-2027"),
]
TRANSITIONS = [pytest.param(p.values[0], p.values[1], id=f"gap-{p.id}") for p in GAPS] + [
    pytest.param(p.values[0], p.values[1], id=f"fold-{p.id}") for p in FOLDS
]


def midnight(zone: ZoneInfo, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


# ------------------------------------------------------------------------------------------ the tables


@pytest.mark.parametrize(("zone", "day"), GAPS)
def test_gap_table_matches_tzdata(zone: ZoneInfo, day: date) -> None:
    wall = datetime.combine(day, time(2, 30), tzinfo=zone)
    assert wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None)


@pytest.mark.parametrize(("zone", "day", "hour"), FOLDS)
def test_fold_table_matches_tzdata(zone: ZoneInfo, day: date, hour: int) -> None:
    wall = datetime.combine(day, time(hour, 30), tzinfo=zone)
    assert wall.utcoffset() != wall.replace(fold=1).utcoffset()


# ------------------------------------------------------------------------------------------------ cron


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        ("*/15 * * * *", "UTC", utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 15)),
        ("0 2 * * *", "Europe/Amsterdam", utc(2026, 1, 1, 12), utc(2026, 1, 2, 1)),
        ("0 2 * * *", "Europe/Amsterdam", utc(2026, 7, 1, 12), utc(2026, 7, 2, 0)),
        ("30 9 * * mon-fri", "UTC", utc(2026, 1, 2, 10), utc(2026, 1, 5, 9, 30)),
        ("0 0 1 jan *", "UTC", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("1-10/3 * * * *", "UTC", utc(2026, 1, 1, 0, 4), utc(2026, 1, 1, 0, 7)),
        ("5/20 * * * *", "UTC", utc(2026, 1, 1, 0, 6), utc(2026, 1, 1, 0, 25)),
        ("0 12 31 * *", "UTC", utc(2026, 4, 1), utc(2026, 5, 31, 12)),
        ("0 8,17 * * *", "UTC", utc(2026, 1, 1, 9), utc(2026, 1, 1, 17)),
        ("0 0 * feb-mar sun", "UTC", utc(2026, 1, 1), utc(2026, 2, 1)),
        ("0 0 29 2 *", "UTC", utc(2026, 1, 1), utc(2028, 2, 29)),
    ],
)
def test_cron_fires_at_next_matching_wall_clock_time(
    expression: str, tz: str, after: datetime, expected: datetime
) -> None:
    assert Recurrence.cron(expression, tz=tz).next_after(after) == expected


@pytest.mark.parametrize("sunday", ["0", "7", "sun"])
def test_cron_sunday_is_0_and_7_and_sun(sunday: str) -> None:
    rec = Recurrence.cron(f"0 6 * * {sunday}")
    assert rec.next_after(utc(2026, 1, 1)) == utc(2026, 1, 4, 6)


def test_cron_either_day_field_matches_when_both_are_restricted() -> None:
    # 2026-01-02 is a Friday, long before the 13th.
    assert Recurrence.cron("0 0 13 * fri").next_after(utc(2026, 1, 1)) == utc(2026, 1, 2)


def test_cron_both_day_fields_must_match_when_one_starts_with_star() -> None:
    # Odd days that are Fridays: the 9th is the first in January 2026.
    assert Recurrence.cron("0 0 */2 * fri").next_after(utc(2026, 1, 1)) == utc(2026, 1, 9)


@pytest.mark.parametrize(
    ("alias", "expression"),
    [("@yearly", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"), ("@hourly", "0 * * * *")],
)
def test_cron_alias_fires_like_its_expansion(alias: str, expression: str) -> None:
    after = utc(2026, 5, 17, 13, 45)
    assert Recurrence.cron(alias).next_after(after) == Recurrence.cron(expression).next_after(after)


def test_cron_names_are_case_insensitive() -> None:
    assert Recurrence.cron("0 0 1 JAN MON-FRI").next_after(utc(2026, 1, 1)) == Recurrence.cron(
        "0 0 1 1 1-5"
    ).next_after(utc(2026, 1, 1))


def test_next_after_is_strictly_after_a_fire_time() -> None:
    assert Recurrence.cron("0 * * * *").next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


def test_next_after_returns_utc_for_a_local_after() -> None:
    fire = Recurrence.cron("0 9 * * *", tz="Europe/Amsterdam").next_after(at(AMS, 2026, 6, 1, 8))
    assert fire == at(AMS, 2026, 6, 1, 9)
    assert fire is not None
    assert fire.tzinfo is UTC


# ---------------------------------------------------------------------------------------------- weekly

WORKDAY = Recurrence.weekly(
    "mon-fri", start="08:00", end="18:00", every=timedelta(hours=2), tz="Europe/Amsterdam"
)


def test_weekly_fires_at_start_then_every_step_until_end() -> None:
    hours = [8, 10, 12, 14, 16, 18]
    assert fires(WORKDAY, at(AMS, 2026, 6, 1, 7), 6) == [at(AMS, 2026, 6, 1, h) for h in hours]


def test_weekly_skips_days_not_chosen() -> None:
    # 2026-06-05 is a Friday.
    assert WORKDAY.next_after(at(AMS, 2026, 6, 5, 18)) == at(AMS, 2026, 6, 8, 8)


def test_weekly_stops_at_the_last_step_within_the_window() -> None:
    rec = Recurrence.weekly("daily", start="08:00", end="09:00", every=timedelta(minutes=25))
    assert fires(rec, utc(2026, 6, 1, 7), 4) == [
        utc(2026, 6, 1, 8),
        utc(2026, 6, 1, 8, 25),
        utc(2026, 6, 1, 8, 50),
        utc(2026, 6, 2, 8),
    ]


def test_weekly_without_every_fires_once_a_day_at_start() -> None:
    rec = Recurrence.weekly("sat-sun", start="07:30")
    # 2026-06-06 is a Saturday.
    assert fires(rec, utc(2026, 6, 1), 3) == [
        utc(2026, 6, 6, 7, 30),
        utc(2026, 6, 7, 7, 30),
        utc(2026, 6, 13, 7, 30),
    ]


def test_weekly_without_end_runs_until_end_of_day() -> None:
    rec = Recurrence.weekly("mon", start="22:00", every=timedelta(hours=1))
    # 2026-06-01 is a Monday.
    assert fires(rec, utc(2026, 6, 1), 3) == [utc(2026, 6, 1, 22), utc(2026, 6, 1, 23), utc(2026, 6, 8, 22)]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("mon,wed,fri", (0, 2, 4)),
        ("sat-sun", (5, 6)),
        (["mon", "thu"], (0, 3)),
        ("daily", (0, 1, 2, 3, 4, 5, 6)),
        ("all", (0, 1, 2, 3, 4, 5, 6)),
        ("fri-mon", (0, 4, 5, 6)),
        ("Monday, TUE", (0, 1)),
    ],
)
def test_weekly_accepts_day_spellings(days: str | list[str], expected: tuple[int, ...]) -> None:
    assert Recurrence.weekly(days, start="08:00").days == expected


# ----------------------------------------------------------------------------------------- every, once


def test_every_is_anchored_at_the_epoch() -> None:
    assert Recurrence.every(timedelta(hours=4)).next_after(utc(2026, 3, 3, 5, 59)) == utc(2026, 3, 3, 8)


def test_every_is_anchored_at_earliest_start() -> None:
    rec = Recurrence.every(timedelta(hours=4), earliest_start=utc(2026, 3, 1, 1, 30))
    assert fires(rec, utc(2026, 1, 1), 3) == [
        utc(2026, 3, 1, 1, 30),
        utc(2026, 3, 1, 5, 30),
        utc(2026, 3, 1, 9, 30),
    ]


def test_once_fires_at_its_instant() -> None:
    christmas_eve = at(AMS, 2026, 12, 24, 18)
    assert Recurrence.once(christmas_eve).next_after(utc(2026, 1, 1)) == christmas_eve


def test_once_does_not_fire_again_after_its_instant() -> None:
    christmas_eve = at(AMS, 2026, 12, 24, 18)
    assert Recurrence.once(christmas_eve).next_after(christmas_eve) is None


# ------------------------------------------------------------------------------ earliest start, expires

BOUNDED = [
    pytest.param(lambda **kw: Recurrence.cron("0 * * * *", **kw), id="cron"),
    pytest.param(
        lambda **kw: Recurrence.weekly("daily", start="00:00", every=timedelta(hours=1), **kw), id="weekly"
    ),
    pytest.param(lambda **kw: Recurrence.every(timedelta(hours=1), **kw), id="every"),
]


@pytest.mark.parametrize("make", BOUNDED[:2])  # ``every`` is anchored at earliest_start instead
def test_no_fire_before_earliest_start(make: Callable[..., Recurrence]) -> None:
    rec = make(earliest_start=utc(2026, 5, 1, 10, 30))
    assert rec.next_after(utc(2026, 1, 1)) == utc(2026, 5, 1, 11)


@pytest.mark.parametrize("make", BOUNDED)
def test_fire_exactly_at_earliest_start_happens(make: Callable[..., Recurrence]) -> None:
    rec = make(earliest_start=utc(2026, 5, 1, 10))
    assert rec.next_after(utc(2026, 1, 1)) == utc(2026, 5, 1, 10)


@pytest.mark.parametrize("make", BOUNDED)
def test_fire_exactly_at_expires_happens(make: Callable[..., Recurrence]) -> None:
    rec = make(expires=utc(2026, 5, 1, 10))
    assert rec.next_after(utc(2026, 5, 1, 9, 30)) == utc(2026, 5, 1, 10)


@pytest.mark.parametrize("make", BOUNDED)
def test_no_fire_after_expires(make: Callable[..., Recurrence]) -> None:
    rec = make(expires=utc(2026, 5, 1, 10, 30))
    assert rec.next_after(utc(2026, 5, 1, 10)) is None


@pytest.mark.parametrize(
    "rec",
    [
        pytest.param(Recurrence.cron("0 0 * * *"), id="cron"),
        pytest.param(Recurrence.every(timedelta(hours=1)), id="every"),
        pytest.param(Recurrence.weekly("daily", start="00:00"), id="weekly"),
    ],
)
def test_next_after_at_end_of_datetime_range_returns_none(rec: Recurrence) -> None:
    assert rec.next_after(datetime.max.replace(tzinfo=UTC) - timedelta(minutes=30)) is None


# -------------------------------------------------------------------------------------------- preview


def test_next_runs_merges_recurrences_in_time_order() -> None:
    morning = Recurrence.cron("0 8 * * *")
    evening = Recurrence.cron("0 20 * * *")
    assert next_runs([evening, morning], utc(2026, 1, 1), 4) == [
        (utc(2026, 1, 1, 8), morning),
        (utc(2026, 1, 1, 20), evening),
        (utc(2026, 1, 2, 8), morning),
        (utc(2026, 1, 2, 20), evening),
    ]


def test_next_runs_lists_a_shared_instant_once_for_the_first_recurrence() -> None:
    hourly = Recurrence.every(timedelta(hours=1))
    noon = Recurrence.cron("0 12 * * *")
    assert next_runs([noon, hourly], utc(2026, 1, 1, 10, 30), 3) == [
        (utc(2026, 1, 1, 11), hourly),
        (utc(2026, 1, 1, 12), noon),
        (utc(2026, 1, 1, 13), hourly),
    ]


def test_next_runs_stops_when_every_recurrence_is_exhausted() -> None:
    once = Recurrence.once(utc(2026, 2, 1))
    assert next_runs([once], utc(2026, 1, 1), 5) == [(utc(2026, 2, 1), once)]


def test_next_runs_of_no_recurrences_is_empty() -> None:
    assert next_runs([], utc(2026, 1, 1), 5) == []


@pytest.mark.parametrize("count", [-1, 1.5, True])
def test_next_runs_rejects_a_bad_count(count: object) -> None:
    with pytest.raises(ValidationError, match="count must be a whole number"):
        next_runs([Recurrence.cron("0 * * * *")], utc(2026, 1, 1), count)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- validate


def test_validate_refuses_once_in_the_past() -> None:
    with pytest.raises(
        ValidationError, match=r"once recurrence at 2026-01-01T00:00:00\+00:00 is in the past"
    ):
        Recurrence.once(utc(2026, 1, 1)).validate(now=utc(2026, 6, 1))


def test_validate_refuses_an_expired_recurrence() -> None:
    with pytest.raises(ValidationError, match="expired at 2026-02-01"):
        Recurrence.cron("0 0 * * *", expires=utc(2026, 2, 1)).validate(now=utc(2026, 6, 1))


def test_validate_refuses_a_window_without_a_fire_time() -> None:
    rec = Recurrence.cron("0 0 1 1 *", earliest_start=utc(2026, 2, 1), expires=utc(2026, 6, 1))
    with pytest.raises(ValidationError, match="has no fire time between"):
        rec.validate(now=utc(2026, 1, 15))


@pytest.mark.parametrize(
    "rec",
    [
        pytest.param(Recurrence.once(utc(2026, 7, 1)), id="once"),
        pytest.param(Recurrence.cron("0 0 * * *", expires=utc(2026, 7, 1)), id="cron"),
        pytest.param(Recurrence.every(timedelta(hours=1), earliest_start=utc(2030, 1, 1)), id="every"),
    ],
)
def test_validate_accepts_a_recurrence_that_fires_later(rec: Recurrence) -> None:
    rec.validate(now=utc(2026, 6, 1))


# ------------------------------------------------------------------------------- describe and storage

EXAMPLES = [
    pytest.param(Recurrence.cron("0 2 * * *", tz="Europe/Amsterdam"), id="cron"),
    pytest.param(WORKDAY, id="weekly"),
    pytest.param(Recurrence.weekly(["mon", "wed"], start="06:15:30"), id="weekly-once-a-day"),
    pytest.param(Recurrence.every(timedelta(minutes=90), tz="America/New_York"), id="every"),
    pytest.param(Recurrence.once(datetime(2026, 12, 24, 18, tzinfo=AMS)), id="once"),
    pytest.param(
        Recurrence.cron("@daily", earliest_start=utc(2026, 1, 1), expires=at(SYD, 2027, 1, 1)), id="bounded"
    ),
]


@pytest.mark.parametrize(
    ("rec", "text"),
    [
        (Recurrence.cron("0 2 * * *", tz="Europe/Amsterdam"), "cron '0 2 * * *' (Europe/Amsterdam)"),
        (
            Recurrence.weekly(
                "mon-fri", start="08:00", end="18:00", every=timedelta(minutes=30), tz="Europe/Amsterdam"
            ),
            "Mon–Fri 08:00–18:00 every 30 min (Europe/Amsterdam)",
        ),
        (Recurrence.weekly("mon,wed,fri,sat", start="7:05"), "Mon, Wed, Fri–Sat at 07:05 (UTC)"),
        (
            Recurrence.weekly("daily", start="00:00", every=timedelta(hours=1)),
            "Daily 00:00–24:00 every 1 h (UTC)",
        ),
        (Recurrence.every(timedelta(hours=1, minutes=30)), "every 1 h 30 min (UTC)"),
        (
            Recurrence.once(datetime(2026, 12, 24, 18, tzinfo=AMS)),
            "once at 2026-12-24 18:00 (Europe/Amsterdam)",
        ),
        (
            Recurrence.every(timedelta(hours=4), tz="Europe/Amsterdam", earliest_start=utc(2026, 1, 1)),
            "every 4 h (Europe/Amsterdam), from 2026-01-01 01:00",
        ),
        (
            Recurrence.cron("@daily", expires=utc(2026, 1, 1, 0, 0, 30)),
            "cron '@daily' (UTC), until 2026-01-01 00:00:30",
        ),
    ],
)
def test_describe_reads_as_text(rec: Recurrence, text: str) -> None:
    assert rec.describe() == text


@pytest.mark.parametrize("rec", EXAMPLES)
def test_from_dict_inverts_to_dict_through_json(rec: Recurrence) -> None:
    assert Recurrence.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "CRN", "expression": "* * * * *"}, "kind 'CRN' is not valid; did you mean 'CRON'?"),
        (
            {"kind": "CRON", "expression": "* * * * *", "expirs": None},
            "unknown key 'expirs'.*did you mean 'expires'",
        ),
        ({"kind": "CRON", "expression": 5}, "expression must be a string"),
        ({"kind": "ONCE", "at": "tomorrow"}, "at 'tomorrow' is not an ISO 8601 datetime"),
        ({"kind": "EVERY", "every_s": "1h"}, "every_s must be a number of seconds"),
        ({"kind": "EVERY"}, "every_s is required"),
        ({"kind": "WEEKLY", "days": "mon", "start": "08:00"}, "days must be a list of weekday names"),
    ],
)
def test_from_dict_refuses_bad_data(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Recurrence.from_dict(data)


def test_equal_recurrences_are_equal_and_hash_alike() -> None:
    first = Recurrence.weekly("mon-fri", start="08:00", end="18:00", every=timedelta(minutes=30))
    second = Recurrence.weekly(["fri", "mon-thu"], start=time(8), end="18:00", every=timedelta(minutes=30))
    assert first == second
    assert len({first, second}) == 1


def test_recurrence_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        WORKDAY.tz = "UTC"  # type: ignore[misc]


def test_catch_up_values_are_their_names() -> None:
    assert [str(policy) for policy in CatchUp] == ["ONCE", "SKIP"]


# ------------------------------------------------------------------------------------------ bad input

NAIVE = datetime(2026, 1, 1)
BAD_INPUT = [
    ("minute", lambda: Recurrence.cron("61 0 * * *"), "minute value 61 is out of range; use 0-59"),
    ("hour", lambda: Recurrence.cron("0 24 * * *"), "hour value 24 is out of range; use 0-23"),
    ("day-of-month", lambda: Recurrence.cron("0 0 0 * *"), "day-of-month value 0 is out of range; use 1-31"),
    ("month", lambda: Recurrence.cron("0 0 * 13 *"), "month value 13 is out of range; use 1-12 or jan-dec"),
    ("weekday name", lambda: Recurrence.cron("0 0 * * tues"), "day-of-week value 'tues'.*did you mean 'tue'"),
    ("field count", lambda: Recurrence.cron("0 0 * *"), "expected 5 fields .*got 4"),
    ("seconds field", lambda: Recurrence.cron("0 0 0 * * *"), "seconds or year field is not supported"),
    ("malformed part", lambda: Recurrence.cron("0 0 * * 1-"), "day-of-week field '1-' has a malformed part"),
    ("zero step", lambda: Recurrence.cron("*/0 * * * *"), "minute step '/0' is not allowed"),
    ("oversized step", lambda: Recurrence.cron("*/90 * * * *"), r"Recurrence.every\(timedelta"),
    ("backwards range", lambda: Recurrence.cron("0 0 * * fri-mon"), "range 'fri-mon' runs backwards"),
    ("alias", lambda: Recurrence.cron("@dialy"), "unknown alias '@dialy'; did you mean '@daily'"),
    ("never fires", lambda: Recurrence.cron("0 0 30 2 *"), "can never fire: day-of-month '30'"),
    ("never fires in short months", lambda: Recurrence.cron("0 0 31 4,6,9,11 *"), "can never fire"),
    (
        "time zone",
        lambda: Recurrence.cron("0 2 * * *", tz="Europe/Amsterdm"),
        "unknown time zone 'Europe/Amsterdm'; did you mean 'Europe/Amsterdam'",
    ),
    ("time zone path", lambda: Recurrence.every(timedelta(hours=1), tz="../etc/passwd"), "unknown time zone"),
    (
        "weekday",
        lambda: Recurrence.weekly("tues", start="08:00"),
        "'tues' is not a weekday; did you mean 'tue'\\?",
    ),
    ("weekday in range", lambda: Recurrence.weekly("mon-fry", start="08:00"), "'fry' is not a weekday"),
    ("weekday number", lambda: Recurrence.weekly([1], start="08:00"), "days must be weekday names"),  # type: ignore[list-item]
    ("no days", lambda: Recurrence.weekly("", start="08:00"), "no days given"),
    ("start", lambda: Recurrence.weekly("mon", start="8am"), "start '8am' is not a time; use 'HH:MM'"),
    ("start hour", lambda: Recurrence.weekly("mon", start="25:00"), "start '25:00' is not a time"),
    (
        "end before start",
        lambda: Recurrence.weekly("mon", start="18:00", end="08:00", every=timedelta(hours=1)),
        "end 18:00 is before start|end 08:00 is before start 18:00",
    ),
    (
        "end without every",
        lambda: Recurrence.weekly("mon", start="08:00", end="18:00"),
        "has no effect without every",
    ),
    (
        "weekly every zero",
        lambda: Recurrence.weekly("mon", start="08:00", every=timedelta(0)),
        "every must be positive",
    ),
    (
        "weekly every int",
        lambda: Recurrence.weekly("mon", start="08:00", every=30),  # type: ignore[arg-type]
        r"every must be a timedelta such as timedelta\(minutes=30\), got 30 \(int\)",
    ),
    ("every negative", lambda: Recurrence.every(timedelta(minutes=-5)), "interval must be positive"),
    ("every int", lambda: Recurrence.every(3600), "interval must be a timedelta"),  # type: ignore[arg-type]
    ("once naive", lambda: Recurrence.once(NAIVE), "at 2026-01-01T00:00:00 is naive"),
    (
        "earliest_start naive",
        lambda: Recurrence.cron("@daily", earliest_start=NAIVE),
        "earliest_start .* is naive",
    ),
    ("expires naive", lambda: Recurrence.every(timedelta(hours=1), expires=NAIVE), "expires .* is naive"),
    (
        "expires before earliest_start",
        lambda: Recurrence.cron("@daily", earliest_start=utc(2026, 2, 1), expires=utc(2026, 1, 1)),
        "expires 2026-01-01T00:00:00\\+00:00 is before earliest_start",
    ),
    ("after naive", lambda: Recurrence.cron("@daily").next_after(NAIVE), "after .* is naive"),
    ("now naive", lambda: Recurrence.cron("@daily").validate(NAIVE), "now .* is naive"),
    ("preview after naive", lambda: next_runs([], NAIVE, 1), "next_runs: after .* is naive"),
    (
        "field for other kind",
        lambda: Recurrence(Recurrence.cron("@daily").kind, at=utc(2026, 1, 1)),
        "at does not",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [pytest.param(make, message, id=name) for name, make, message in BAD_INPUT]
)
def test_bad_input_is_refused_with_a_message_naming_the_fix(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make()


def test_cron_error_names_the_recurrence() -> None:
    with pytest.raises(ValidationError, match=r"^cron recurrence '61 0 \* \* \*': "):
        Recurrence.cron("61 0 * * *")


# ------------------------------------------------------------------------------------------------- DST


@pytest.mark.parametrize(("zone", "day"), GAPS)
def test_cron_time_in_spring_forward_gap_fires_at_first_valid_instant(zone: ZoneInfo, day: date) -> None:
    rec = Recurrence.cron(f"30 2 {day.day} {day.month} *", tz=zone.key)
    assert rec.next_after(midnight(zone, day)) == at(zone, day.year, day.month, day.day, 3)


@pytest.mark.parametrize(("zone", "day"), GAPS)
def test_cron_times_in_spring_forward_gap_fire_once(zone: ZoneInfo, day: date) -> None:
    rec = Recurrence.cron("*/15 * * * *", tz=zone.key)
    after = at(zone, day.year, day.month, day.day, 1, 50)
    expected = [at(zone, day.year, day.month, day.day, 3, minute) for minute in (0, 15, 30)]
    assert fires(rec, after, 3) == expected


@pytest.mark.parametrize(("zone", "day", "hour"), FOLDS)
def test_cron_time_in_fall_back_overlap_fires_once_at_first_occurrence(
    zone: ZoneInfo, day: date, hour: int
) -> None:
    rec = Recurrence.cron(f"30 {hour} * * *", tz=zone.key)
    first, following = fires(rec, midnight(zone, day), 2)
    assert first == at(zone, day.year, day.month, day.day, hour, 30, fold=0)
    next_day = day + timedelta(days=1)
    assert following == at(zone, next_day.year, next_day.month, next_day.day, hour, 30)


@pytest.mark.parametrize(("zone", "day", "hour"), FOLDS)
def test_cron_skips_the_second_pass_of_the_repeated_hour(zone: ZoneInfo, day: date, hour: int) -> None:
    rec = Recurrence.cron("*/30 * * * *", tz=zone.key)
    after = at(zone, day.year, day.month, day.day, hour, 0, fold=1)
    assert rec.next_after(after) == at(zone, day.year, day.month, day.day, hour + 1, 0)


@pytest.mark.parametrize(("zone", "day"), TRANSITIONS)
def test_daily_cron_fires_once_per_local_day_across_transition(zone: ZoneInfo, day: date) -> None:
    rec = Recurrence.cron("30 2 * * *", tz=zone.key)
    runs = fires(rec, midnight(zone, day - timedelta(days=2)), 5)
    local_days = [fire.astimezone(zone).date() for fire in runs]
    assert local_days == [day - timedelta(days=2) + timedelta(days=n) for n in range(5)]


@pytest.mark.parametrize(("zone", "day"), TRANSITIONS)
def test_every_keeps_real_elapsed_time_across_transition(zone: ZoneInfo, day: date) -> None:
    rec = Recurrence.every(timedelta(minutes=45), tz=zone.key)
    runs = fires(rec, midnight(zone, day), 20)
    assert {later - earlier for earlier, later in itertools.pairwise(runs)} == {timedelta(minutes=45)}


@pytest.mark.parametrize(
    ("zone", "day", "count"),
    [pytest.param(*p.values, 6, id=f"gap-{p.id}") for p in GAPS]
    + [pytest.param(p.values[0], p.values[1], 8, id=f"fold-{p.id}") for p in FOLDS],
)
def test_weekly_window_keeps_real_elapsed_time_across_transition(
    zone: ZoneInfo, day: date, count: int
) -> None:
    rec = Recurrence.weekly("daily", start="00:00", end="06:00", every=timedelta(hours=1), tz=zone.key)
    runs = [
        fire
        for fire in fires(rec, midnight(zone, day) - timedelta(seconds=1), 12)
        if fire.astimezone(zone).date() == day
    ]
    assert len(runs) == count
    assert runs[0] == midnight(zone, day)
    assert runs[-1] == at(zone, day.year, day.month, day.day, 6)
    assert {later - earlier for earlier, later in itertools.pairwise(runs)} == {timedelta(hours=1)}


@pytest.mark.parametrize(("zone", "day"), GAPS)
def test_weekly_start_in_spring_forward_gap_fires_at_first_valid_instant(zone: ZoneInfo, day: date) -> None:
    rec = Recurrence.weekly("daily", start="02:30", tz=zone.key)
    assert rec.next_after(midnight(zone, day)) == at(zone, day.year, day.month, day.day, 3)


@pytest.mark.parametrize(("zone", "day"), TRANSITIONS)
@pytest.mark.parametrize(
    "expression", ["*/15 * * * *", "0 2 * * *", "30 1-3 * * *", "0,30 * * * *", "59 1 * * *", "0 3 * * *"]
)
def test_cron_runs_through_transition_are_strictly_increasing(
    zone: ZoneInfo, day: date, expression: str
) -> None:
    after = midnight(zone, day) - timedelta(hours=1)
    runs = fires(Recurrence.cron(expression, tz=zone.key), after, 40)
    assert runs[0] > after
    assert all(earlier < later for earlier, later in itertools.pairwise(runs))


# ------------------------------------------------------------------------------------ property-style

PROPERTY_CRONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 2-3 * * *",
    "15,45 1,2,3 * * *",
    "0 9 * * mon-fri",
    "0 0 1 * *",
    "0 12 31 * *",
    "0 0 13 * fri",
    "0 0 */2 * sun",
    "0 6 1 jan,jul *",
    "5 4 * * 0",
    "0 0 29 2 *",
]
PROPERTY_ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Sydney"]


def random_afters(seed: int, count: int) -> list[datetime]:
    rng = random.Random(seed)
    start, span_us = utc(2026, 1, 1), (utc(2028, 1, 1) - utc(2026, 1, 1)) // timedelta(microseconds=1)
    return sorted(start + timedelta(microseconds=rng.randrange(span_us)) for _ in range(count))


@pytest.mark.parametrize("tz", PROPERTY_ZONES)
@pytest.mark.parametrize("expression", PROPERTY_CRONS)
def test_cron_next_after_is_later_and_monotone(expression: str, tz: str) -> None:
    rec = Recurrence.cron(expression, tz=tz)
    afters = random_afters(seed=20260101, count=60)
    runs = [rec.next_after(after) for after in afters]
    assert all(fire is not None and fire > after for after, fire in zip(afters, runs, strict=True))
    assert runs == sorted(runs)  # type: ignore[type-var]


@pytest.mark.parametrize("tz", PROPERTY_ZONES)
@pytest.mark.parametrize("expression", PROPERTY_CRONS)
def test_cron_next_after_misses_no_fire(expression: str, tz: str) -> None:
    rec = Recurrence.cron(expression, tz=tz)
    rng = random.Random(7)
    for after in random_afters(seed=20271231, count=30):
        fire = rec.next_after(after)
        assert fire is not None
        between = after + (fire - after) * rng.random()
        assert rec.next_after(min(between, fire - timedelta(microseconds=1))) == fire
