"""The values a recurrence is made of: time zones, wall-clock times, weekdays and intervals.

``wall_time`` and ``resolve`` are the two primitives of the DST rule (see ``recurrence``); the others
parse user input and stored dicts, with messages that name the fix, and format values for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jqm_celery.errors import ValidationError, did_you_mean

TICK = timedelta(microseconds=1)
END_OF_DAY = time.max
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def wall_time(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time of ``instant`` in ``zone`` (fold cleared, so it resolves by the DST rule)."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``zone``, by the module's DST rule."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if wall_time(first, zone) == wall:
        return first
    # ``wall`` is in a gap: fold=1 reads it with the offset after the transition (an instant before it),
    # fold=0 with the offset before (an instant after it). The transition lies in between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = 0, (first - before) // TICK
    while high - low > 1:
        middle = (low + high) // 2
        if wall_time(before + middle * TICK, zone) > wall:
            high = middle
        else:
            low = middle
    return before + high * TICK


def zone_info(tz: object, label: str) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str) or not tz:
        raise ValidationError(
            f"{label}: time zone must be an IANA name such as 'Europe/Amsterdam', got {tz!r}"
        )
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        fix = did_you_mean(tz, available_timezones()) or "; use an IANA name such as Europe/Amsterdam or UTC"
        raise ValidationError(f"{label}: unknown time zone '{tz}'{fix}") from None


# ------------------------------------------------------------------------------------------------ weekly


def parse_days(days: object, label: str) -> tuple[int, ...]:
    if isinstance(days, str):
        parts = [part.strip() for part in days.split(",")]
    elif isinstance(days, Iterable):
        parts = []
        for part in days:
            if not isinstance(part, str):
                raise ValidationError(
                    f"{label}: days must be weekday names such as 'mon' or 'mon-fri', got {part!r}"
                )
            parts.append(part.strip())
    else:
        raise ValidationError(
            f"{label}: days must be a string such as 'mon-fri' or a list of names, got {days!r}"
        )
    chosen: set[int] = set()
    for part in (part.lower() for part in parts):
        if part in ("daily", "all"):
            chosen.update(range(7))
        elif "-" in part:
            first, last = (weekday_number(name.strip(), label) for name in part.split("-", 1))
            day = first
            chosen.add(day)
            while day != last:  # a range may wrap past Sunday: 'fri-mon'
                day = (day + 1) % 7
                chosen.add(day)
        elif part:
            chosen.add(weekday_number(part, label))
    if not chosen:
        raise ValidationError(f"{label}: no days given; use e.g. 'mon-fri', 'mon,wed,fri' or 'daily'")
    return tuple(sorted(chosen))


def weekday_number(name: str, label: str) -> int:
    for names in (WEEKDAYS, _WEEKDAY_NAMES):
        if name in names:
            return names.index(name)
    suggestion = did_you_mean(name, WEEKDAYS + _WEEKDAY_NAMES)
    fix = suggestion or "; use mon, tue, wed, thu, fri, sat or sun"
    raise ValidationError(f"{label}: '{name}' is not a weekday{fix}")


_TIME = re.compile(
    r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<micro>[0-9]{6}))?)?"
)


def parse_time(value: object, what: str, label: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValidationError(
                f"{label}: {what} {value} carries a time zone; give a plain wall-clock time and set tz"
            )
        return value
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is not None:
        hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second, int(match["micro"] or 0))
    raise ValidationError(
        f"{label}: {what} {value!r} is not a time; use 'HH:MM' on a 24-hour clock, e.g. '08:00'"
    )


# --------------------------------------------------------------------------------------------- formatting


def format_interval(interval: timedelta) -> str:
    seconds, micro = divmod(interval // TICK, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    if micro:
        parts.append(f"{seconds + micro / 1_000_000:g} s")
    elif seconds:
        parts.append(f"{seconds} s")
    return " ".join(parts)


def format_time(value: time) -> str:
    if value == END_OF_DAY:
        return "24:00"
    return value.isoformat("minutes" if not value.second and not value.microsecond else "auto")


def format_days(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "Daily"
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [
        WEEKDAYS[run[0]].title() + (f"–{WEEKDAYS[run[-1]].title()}" if len(run) > 1 else "") for run in runs
    ]
    return ", ".join(names)


def format_instant(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return local.strftime(
        "%Y-%m-%d %H:%M" if not local.second and not local.microsecond else "%Y-%m-%d %H:%M:%S"
    )


def aware(value: object, what: str, label: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(f"{label}: {what} must be a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{label}: {what} {value.isoformat()} is naive; give it a time zone, "
            "e.g. datetime(..., tzinfo=ZoneInfo('Europe/Amsterdam'))"
        )
    return value.astimezone(UTC)


def positive_interval(value: object, what: str, label: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise ValidationError(
            f"{label}: {what} must be a timedelta such as timedelta(minutes=30), got {value!r} "
            f"({type(value).__name__})"
        )
    if value <= timedelta(0):
        raise ValidationError(
            f"{label}: {what} must be positive, got {value}; use e.g. timedelta(minutes=30)"
        )
    return value


def tz_name(tz: object, label: str) -> str:
    zone = zone_info(tz, label)
    return zone.key if isinstance(tz, ZoneInfo) else str(tz)


def opt_iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def opt_datetime(value: object, what: str, label: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(
        f"{label}: {what} {value!r} is not an ISO 8601 datetime such as '2026-01-01T00:00:00+00:00'"
    )


def opt_seconds(value: object, label: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ValidationError(f"{label}: every_s must be a number of seconds, got {value!r}")


def str_value(value: object, what: str, label: str) -> str:
    if isinstance(value, str):
        return value
    raise ValidationError(f"{label}: {what} must be a string such as '08:00', got {value!r}")


def days_value(value: object, label: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(day, str) for day in value):
        return [str(day) for day in value]
    raise ValidationError(
        f"{label}: days must be a list of weekday names such as ['mon', 'tue'], got {value!r}"
    )
