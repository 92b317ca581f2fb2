"""A package's recurrences as django-celery-beat schedules: pure code, no Django import.

Each recurrence becomes one or more :class:`PeriodicSpec` values, one per django-celery-beat
``PeriodicTask`` row, named ``jqm:<package>:<position>`` (``jqm:<package>:<position>.<part>`` when a
weekly window needs several crontab rows). What django-celery-beat cannot express exactly is either
expanded into several exact rows or refused with a :class:`~jqm_celery.errors.ValidationError`; nothing is
approximated silently. The differences that remain (DST, phase of an interval, expiry) are listed in
``docs/scheduling.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

from jqm_celery.definitions import Package
from jqm_celery.errors import ValidationError
from jqm_celery.recurrence import Recurrence, RecurrenceKind

#: Every row the bridge owns is named with this prefix, so rows of other schedules are never touched.
ROW_PREFIX = "jqm:"
#: django-celery-beat disables a row at ``expires``; a fire due exactly then must still get through.
EXPIRES_SLACK = timedelta(seconds=1)

_MINUTES_PER_DAY = 24 * 60
# IntervalSchedule.every is a 32-bit integer.
_MAX_EVERY = 2**31 - 1
_PERIODS = (
    ("days", timedelta(days=1)),
    ("hours", timedelta(hours=1)),
    ("minutes", timedelta(minutes=1)),
    ("seconds", timedelta(seconds=1)),
    ("microseconds", timedelta(microseconds=1)),
)
_SUFFIX = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class Crontab:
    """The fields of a django-celery-beat ``CrontabSchedule`` (day_of_week: 0 = Sunday)."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str
    timezone: str


@dataclass(frozen=True)
class PeriodicSpec:
    """One ``PeriodicTask`` row for (part of) one recurrence; exactly one of the three schedules is set."""

    name: str
    description: str
    crontab: Crontab | None = None
    interval: tuple[int, str] | None = None  # (every, period), e.g. (4, "hours")
    clocked: datetime | None = None
    start_time: datetime | None = None
    expires: datetime | None = None
    #: What django-celery-beat counts the next fire from (its ``last_run_at``), set when the row is written.
    last_run_at: datetime | None = None
    #: The recurrence has no fire after now (a past ``once``, an expired recurrence): the row stays disabled.
    finished: bool = False


def row_name(package: str, position: int, part: int | None = None) -> str:
    """``jqm:<package>:<position>``, or ``jqm:<package>:<position>.<part>`` for one of several rows."""
    suffix = str(position) if part is None else f"{position}.{part}"
    return f"{ROW_PREFIX}{package}:{suffix}"


def package_of(row: str) -> str | None:
    """The package a row name belongs to, or ``None`` for a row the bridge did not name."""
    if not row.startswith(ROW_PREFIX):
        return None
    package, _, suffix = row[len(ROW_PREFIX) :].rpartition(":")
    return package if package and _SUFFIX.fullmatch(suffix) else None


def periodic_specs(package: Package, now: datetime) -> list[PeriodicSpec]:
    """The rows of every recurrence of ``package``; ValidationError for one that cannot be expressed."""
    specs: list[PeriodicSpec] = []
    for position, recurrence in enumerate(package.recurrences, start=1):
        specs += recurrence_specs(package.name, position, recurrence, now)
    return specs


def recurrence_specs(
    package: str, position: int, recurrence: Recurrence, now: datetime
) -> list[PeriodicSpec]:
    """The rows for one recurrence (position counts from 1, as in ``jqm packages show``)."""
    label = f"package '{package}': recurrence {position} ({recurrence.describe()})"
    following = recurrence.next_after(now)
    base = PeriodicSpec(
        row_name(package, position),
        f"jqm package '{package}', recurrence {position}: {recurrence.describe()}",
        start_time=recurrence.earliest_start,
        expires=None if recurrence.expires is None else recurrence.expires + EXPIRES_SLACK,
        finished=following is None,
    )
    if recurrence.kind is RecurrenceKind.EVERY:
        assert recurrence.interval is not None
        # django-celery-beat fires ``interval`` after the last run; starting from jqm's previous instant
        # keeps jqm's phase (anchored at earliest_start or the epoch) for the first fire.
        previous = None if following is None else following - recurrence.interval
        return [replace(base, interval=_interval(recurrence.interval, label), last_run_at=previous)]
    if recurrence.kind is RecurrenceKind.ONCE:
        return [replace(base, clocked=recurrence.at)]
    # A crontab counts from its last run; counting from now (or earliest_start) keeps django-celery-beat
    # from firing at once for a start_time in the past, which jqm would not do.
    start = max(now, recurrence.earliest_start or now)
    if recurrence.kind is RecurrenceKind.CRON:
        crontabs = _cron(recurrence, label)
    else:
        crontabs = _weekly(recurrence, label)
    if len(crontabs) == 1:
        return [replace(base, crontab=crontabs[0], last_run_at=start)]
    return [
        replace(base, name=row_name(package, position, part), crontab=crontab, last_run_at=start)
        for part, crontab in enumerate(crontabs, start=1)
    ]


def _interval(interval: timedelta, label: str) -> tuple[int, str]:
    for period, unit in _PERIODS:
        if interval % unit == timedelta(0) and interval // unit <= _MAX_EVERY:
            return interval // unit, period
    raise ValidationError(
        f"{label}: django-celery-beat cannot store an interval of {interval} (whole seconds up to 68 "
        "years, or microseconds up to 35 minutes); round the interval, or schedule this package with "
        "PackageScheduler"
    )


def _cron(recurrence: Recurrence, label: str) -> list[Crontab]:
    fields = recurrence.cron_fields()
    assert fields is not None
    if fields.either_day:
        raise ValidationError(
            f"{label}: django-celery-beat cannot express it: it restricts both day-of-month and day-of-week, "
            "and jqm fires on a day that matches either one while celery's crontab needs both; restrict only "
            "one of the two fields (and add a second recurrence for the other), or schedule this package "
            "with PackageScheduler"
        )
    return [
        Crontab(
            _field(fields.minutes, range(60)),
            _field(fields.hours, range(24)),
            _field(fields.days_of_month, range(1, 32)),
            _field(fields.months, range(1, 13)),
            _field(fields.days_of_week, range(7)),
            recurrence.tz,
        )
    ]


def _weekly(recurrence: Recurrence, label: str) -> list[Crontab]:
    """A weekday window as crontabs: its fires are grouped by hour, one crontab per distinct minute set.

    A step that divides 60 minutes gives at most three crontabs (first hour, whole hours, last hour), any
    other whole number of minutes at most one per hour of the window. The fires are wall-clock times, so
    they are exact except on DST transition days (see docs/scheduling.md).
    """
    assert recurrence.start is not None
    if _seconds_part(recurrence.start):
        raise ValidationError(
            f"{label}: django-celery-beat cannot express a start time with seconds "
            f"({recurrence.start.isoformat()}); start on a whole minute, or schedule this package with "
            "PackageScheduler"
        )
    first = recurrence.start.hour * 60 + recurrence.start.minute
    fires = [first]
    if recurrence.interval is not None:
        step, rest = divmod(recurrence.interval, timedelta(minutes=1))
        if rest:
            raise ValidationError(
                f"{label}: django-celery-beat cannot express runs every {recurrence.interval} (crontabs "
                "have whole minutes); use a whole number of minutes, or schedule this package with "
                "PackageScheduler"
            )
        end = recurrence.end or time.max
        last = end.hour * 60 + end.minute
        fires = list(range(first, min(last, _MINUTES_PER_DAY - 1) + 1, step))
    minutes_by_hour: dict[int, list[int]] = {}
    for fire in fires:
        minutes_by_hour.setdefault(fire // 60, []).append(fire % 60)
    hours_by_minutes: dict[tuple[int, ...], list[int]] = {}
    for hour, minutes in minutes_by_hour.items():
        hours_by_minutes.setdefault(tuple(minutes), []).append(hour)
    days = _field(sorted((day + 1) % 7 for day in recurrence.days), range(7))
    return [
        Crontab(_field(minutes, range(60)), _field(hours, range(24)), "*", "*", days, recurrence.tz)
        for minutes, hours in hours_by_minutes.items()
    ]


def _seconds_part(value: time) -> bool:
    return bool(value.second or value.microsecond)


def _field(values: Sequence[int], full: range) -> str:
    if set(values) == set(full):
        return "*"
    return ",".join(str(value) for value in sorted(values))
