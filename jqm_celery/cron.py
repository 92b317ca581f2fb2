"""Standard 5-field cron expressions: parsed once, matched on the wall clock of a time zone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.recurrence_values import WEEKDAYS, resolve, wall_time

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Feb 29 on a given weekday can be 40 years apart (around 2100, which is not a leap year).
_CRON_SEARCH_DAYS = 50 * 366


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    valid: str


_CRON_FIELDS = (
    _CronField("minute", 0, 59, {}, "0-59"),
    _CronField("hour", 0, 23, {}, "0-23"),
    _CronField("day-of-month", 1, 31, {}, "1-31"),
    _CronField("month", 1, 12, {name: i for i, name in enumerate(_MONTHS, start=1)}, "1-12 or jan-dec"),
    _CronField(
        "day-of-week",
        0,
        7,
        {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)},
        "0-7 (0 and 7 are Sunday) or sun-sat",
    ),
)
_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_PART = re.compile(r"(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?")


@dataclass(frozen=True)
class CronFields:
    """The values each field of a cron recurrence matches, for schedulers that take cron fields."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]  # 0 = Sunday
    #: Both day fields are restricted, so a day that matches either one fires (Vixie cron).
    either_day: bool


@dataclass(frozen=True)
class CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    either_day: bool  # Vixie cron: both day fields restricted, so a day matching either one fires

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        return (by_date or by_weekday) if self.either_day else (by_date and by_weekday)


def parse_cron(expression: str, label: str) -> CronSpec:
    text = _CRON_ALIASES.get(expression.strip().lower(), expression)
    if text.strip().startswith("@"):
        alias = text.strip().lower()
        fix = did_you_mean(alias, _CRON_ALIASES) or f"; use one of {', '.join(_CRON_ALIASES)} or 5 fields"
        raise ValidationError(f"{label}: unknown alias '{alias}'{fix}")
    parts = text.split()
    if len(parts) != 5:
        extra = "; a seconds or year field is not supported" if len(parts) in (6, 7) else ""
        raise ValidationError(
            f"{label}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}{extra}"
        )
    minutes, hours, days, months, weekdays = (
        _parse_cron_field(part, spec, label) for part, spec in zip(parts, _CRON_FIELDS, strict=True)
    )
    either_day = not parts[2].startswith("*") and not parts[4].startswith("*")
    if not either_day and not any(day <= _MONTH_DAYS[month - 1] for month in months for day in days):
        raise ValidationError(
            f"{label}: can never fire: day-of-month '{parts[2]}' does not occur in month '{parts[3]}'; "
            "check the day-of-month and month fields"
        )
    return CronSpec(
        tuple(sorted(minutes)),
        tuple(sorted(hours)),
        frozenset(days),
        frozenset(months),
        frozenset(day % 7 for day in weekdays),
        either_day,
    )


def _parse_cron_field(text: str, spec: _CronField, label: str) -> set[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        match = _CRON_PART.fullmatch(part)
        if match is None:
            raise ValidationError(
                f"{label}: {spec.name} field '{text}' has a malformed part '{part}'; "
                f"use a value, a range 'a-b', a list 'a,b' or a step '*/n' with values {spec.valid}"
            )
        span, step_text = match["range"], match["step"]
        if span == "*":
            low, high = spec.low, spec.high
        elif "-" in span:
            first, last = span.split("-")
            low, high = _cron_value(first, spec, label), _cron_value(last, spec, label)
            if low > high:
                raise ValidationError(
                    f"{label}: {spec.name} range '{span}' runs backwards; write it low-high, or as a list"
                )
        else:
            low = _cron_value(span, spec, label)
            high = spec.high if step_text is not None else low
        step = 1 if step_text is None else int(step_text)
        if step == 0:
            raise ValidationError(f"{label}: {spec.name} step '/0' is not allowed; use a step of 1 or more")
        if span == "*" and step > spec.high - spec.low:
            raise ValidationError(
                f"{label}: {spec.name} step '/{step}' is larger than the range {spec.valid} and would fire "
                "once; for a longer interval use Recurrence.every(timedelta(...))"
            )
        values.update(range(low, high + 1, step))
    return values


def _cron_value(text: str, spec: _CronField, label: str) -> int:
    if text.isdigit():
        value = int(text)
        if spec.low <= value <= spec.high:
            return value
        raise ValidationError(f"{label}: {spec.name} value {value} is out of range; use {spec.valid}")
    if text in spec.names:
        return spec.names[text]
    raise ValidationError(
        f"{label}: {spec.name} value '{text}' is not valid; use {spec.valid}{did_you_mean(text, spec.names)}"
    )


def next_cron(spec: CronSpec, zone: ZoneInfo, after: datetime, until: datetime | None) -> datetime | None:
    first = wall_time(after, zone).replace(second=0, microsecond=0)
    day = first.date()
    last_day = day + timedelta(days=_CRON_SEARCH_DAYS)
    if until is not None:
        last_day = min(last_day, wall_time(until, zone).date() + timedelta(days=1))
    while day <= last_day:
        if day.month not in spec.months:
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            continue
        if spec.matches_day(day):
            for hour in spec.hours:
                if day == first.date() and hour < first.hour:
                    continue
                for minute in spec.minutes:
                    if day == first.date() and hour == first.hour and minute < first.minute:
                        continue
                    fire = resolve(datetime.combine(day, time(hour, minute)), zone)
                    if fire > after:
                        return fire
        day += timedelta(days=1)
    return None


# ------------------------------------------------------------------------------------------- wall clock
