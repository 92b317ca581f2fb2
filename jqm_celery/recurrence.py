"""When a package runs: recurrences and the maths of their next fire time.

A :class:`Recurrence` is one rule of four kinds:

- ``Recurrence.cron(expression, tz=...)``: a standard 5-field cron expression on the wall clock of ``tz``.
- ``Recurrence.weekly(days, start=..., end=..., every=..., tz=...)``: Business Central's "Run on Mondays ..
  Sundays", "Starting Time", "Ending Time" and "No. of Minutes between Runs", on the wall clock of ``tz``.
- ``Recurrence.every(interval)``: real elapsed time, at ``anchor + k * interval`` where the anchor is
  ``earliest_start`` if given, else 1970-01-01T00:00Z (so ``every(timedelta(hours=4))`` fires at 00:00,
  04:00, 08:00 ... UTC).
- ``Recurrence.once(at)``: one instant.

Every recurrence may carry ``earliest_start`` (no fire before it) and ``expires`` (no fire after it; a fire
exactly at ``expires`` still happens). Every datetime returned is timezone-aware UTC; nothing here reads the
clock, so callers pass ``after`` / ``now``.

Daylight saving time (DST) rule. A wall-clock time is turned into an instant as follows:

1. A wall-clock time that does not exist (the spring-forward gap) resolves to the first valid instant after
   the gap, i.e. the transition itself: 02:30 on Europe/Amsterdam's spring-forward day resolves to 03:00
   CEST. Several wall-clock times in one gap (02:00, 02:15, ... for ``*/15``) resolve to that same instant
   and so fire once, together with a fire due at 03:00 itself.
2. A wall-clock time that occurs twice (the fall-back overlap) resolves to its first occurrence (``fold=0``)
   and fires once. During the repeated hour's second pass nothing fires that already fired in the first
   pass: ``*/15 * * * *`` in Europe/Amsterdam fires 02:00 .. 02:45 CEST, then 03:00 CET.
3. ``cron`` resolves each matching wall-clock time by rules 1 and 2.
4. ``weekly`` resolves each chosen day's ``start`` and ``end`` by rules 1 and 2, giving that day's window
   start and end instants. It fires at the window start instant, then after each further ``every`` of
   real elapsed time, while the fire is at or before the window end instant. The runs therefore stay
   exactly ``every`` apart in real time, and a window that spans a transition holds one hour less or
   more on the wall clock. Example, 00:00-06:00 every 60 min in Europe/Amsterdam: on the spring-forward
   day it fires 00:00, 01:00, 03:00, 04:00, 05:00, 06:00 (6 runs); on the fall-back day 00:00, 01:00,
   02:00 CEST, 02:00 CET, 03:00, 04:00, 05:00, 06:00 (8 runs). Without ``every`` it fires once a day at
   the window start instant.
5. ``every`` and ``once`` are instants; DST does not affect them.

``next_after(after)`` never returns an instant at or before ``after``, and the search is bounded: a cron
expression that cannot fire is refused at construction (``0 0 30 2 *``), and a search that finds nothing
within the bound (or past the end of the ``datetime`` range) returns ``None`` instead of looping.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jqm_celery.errors import ValidationError, did_you_mean

__all__ = ["CatchUp", "CronFields", "Recurrence", "RecurrenceKind", "next_runs"]


class CatchUp(StrEnum):
    """What beat does with fire times it missed while it was down: run once for all of them, or skip them."""

    ONCE = "ONCE"
    SKIP = "SKIP"


class RecurrenceKind(StrEnum):
    CRON = "CRON"
    WEEKLY = "WEEKLY"
    EVERY = "EVERY"
    ONCE = "ONCE"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_END_OF_DAY = time.max
# Feb 29 on a given weekday can be 40 years apart (around 2100, which is not a leap year).
_CRON_SEARCH_DAYS = 50 * 366
_WEEKLY_SEARCH_DAYS = 15

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# ------------------------------------------------------------------------------------------------ cron


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
        {name: (i + 1) % 7 for i, name in enumerate(_WEEKDAYS)},
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
class _CronSpec:
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


def _parse_cron(expression: str, label: str) -> _CronSpec:
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
    return _CronSpec(
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


def _next_cron(spec: _CronSpec, zone: ZoneInfo, after: datetime, until: datetime | None) -> datetime | None:
    first = _wall(after, zone).replace(second=0, microsecond=0)
    day = first.date()
    last_day = day + timedelta(days=_CRON_SEARCH_DAYS)
    if until is not None:
        last_day = min(last_day, _wall(until, zone).date() + timedelta(days=1))
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
                    fire = _resolve(datetime.combine(day, time(hour, minute)), zone)
                    if fire > after:
                        return fire
        day += timedelta(days=1)
    return None


# ------------------------------------------------------------------------------------------- wall clock


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time of ``instant`` in ``zone`` (fold cleared, so it resolves by the DST rule)."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``zone``, by the module's DST rule."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    # ``wall`` is in a gap: fold=1 reads it with the offset after the transition (an instant before it),
    # fold=0 with the offset before (an instant after it). The transition lies in between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = 0, (first - before) // _TICK
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(before + middle * _TICK, zone) > wall:
            high = middle
        else:
            low = middle
    return before + high * _TICK


def _zone(tz: object, label: str) -> ZoneInfo:
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


def _parse_days(days: object, label: str) -> tuple[int, ...]:
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
            first, last = (_weekday(name.strip(), label) for name in part.split("-", 1))
            day = first
            chosen.add(day)
            while day != last:  # a range may wrap past Sunday: 'fri-mon'
                day = (day + 1) % 7
                chosen.add(day)
        elif part:
            chosen.add(_weekday(part, label))
    if not chosen:
        raise ValidationError(f"{label}: no days given; use e.g. 'mon-fri', 'mon,wed,fri' or 'daily'")
    return tuple(sorted(chosen))


def _weekday(name: str, label: str) -> int:
    for names in (_WEEKDAYS, _WEEKDAY_NAMES):
        if name in names:
            return names.index(name)
    suggestion = did_you_mean(name, _WEEKDAYS + _WEEKDAY_NAMES)
    fix = suggestion or "; use mon, tue, wed, thu, fri, sat or sun"
    raise ValidationError(f"{label}: '{name}' is not a weekday{fix}")


_TIME = re.compile(
    r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.(?P<micro>[0-9]{6}))?)?"
)


def _parse_time(value: object, what: str, label: str) -> time:
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


def _next_in_window(rec: Recurrence, day: date, zone: ZoneInfo, after: datetime) -> datetime | None:
    assert rec.start is not None
    start = _resolve(datetime.combine(day, rec.start), zone)
    if after < start:
        return start
    if rec.interval is None:
        return None
    end = _resolve(datetime.combine(day, rec.end or _END_OF_DAY), zone)
    fire = start + ((after - start) // rec.interval + 1) * rec.interval
    return fire if fire <= end else None


# --------------------------------------------------------------------------------------------- formatting


def _format_interval(interval: timedelta) -> str:
    seconds, micro = divmod(interval // _TICK, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    if micro:
        parts.append(f"{seconds + micro / 1_000_000:g} s")
    elif seconds:
        parts.append(f"{seconds} s")
    return " ".join(parts)


def _format_time(value: time) -> str:
    if value == _END_OF_DAY:
        return "24:00"
    return value.isoformat("minutes" if not value.second and not value.microsecond else "auto")


def _format_days(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "Daily"
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [
        _WEEKDAYS[run[0]].title() + (f"–{_WEEKDAYS[run[-1]].title()}" if len(run) > 1 else "") for run in runs
    ]
    return ", ".join(names)


def _format_instant(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return local.strftime(
        "%Y-%m-%d %H:%M" if not local.second and not local.microsecond else "%Y-%m-%d %H:%M:%S"
    )


def _aware(value: object, what: str, label: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(f"{label}: {what} must be a timezone-aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{label}: {what} {value.isoformat()} is naive; give it a time zone, "
            "e.g. datetime(..., tzinfo=ZoneInfo('Europe/Amsterdam'))"
        )
    return value.astimezone(UTC)


def _positive_interval(value: object, what: str, label: str) -> timedelta:
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


# ------------------------------------------------------------------------------------------- Recurrence

_KIND_FIELDS = {
    RecurrenceKind.CRON: {"expression"},
    RecurrenceKind.WEEKLY: {"days", "start", "end", "interval"},
    RecurrenceKind.EVERY: {"interval"},
    RecurrenceKind.ONCE: {"at"},
}
_KIND_KEYS = {
    RecurrenceKind.CRON: {"expression"},
    RecurrenceKind.WEEKLY: {"days", "start", "end", "every_s"},
    RecurrenceKind.EVERY: {"every_s"},
    RecurrenceKind.ONCE: {"at"},
}
_COMMON_KEYS = {"kind", "tz", "earliest_start", "expires"}
_KIND_VALUES = frozenset(kind.value for kind in RecurrenceKind)


@dataclass(frozen=True)
class Recurrence:
    """One rule for when a package runs: build it with ``cron``, ``weekly``, ``every`` or ``once``.

    Fields a kind does not use stay empty. Datetimes are normalised to UTC; ``tz`` is an IANA name.
    """

    kind: RecurrenceKind
    tz: str = "UTC"
    expression: str | None = None
    days: tuple[int, ...] = ()  # 0 = Monday
    start: time | None = None
    end: time | None = None
    interval: timedelta | None = None
    at: datetime | None = None
    earliest_start: datetime | None = None
    expires: datetime | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _cron: _CronSpec | None = field(init=False, repr=False, compare=False, default=None)

    # -- construction

    @classmethod
    def cron(
        cls,
        expression: str,
        *,
        tz: str | ZoneInfo = "UTC",
        earliest_start: datetime | None = None,
        expires: datetime | None = None,
    ) -> Recurrence:
        """Fire whenever the 5-field cron ``expression`` matches the wall clock of ``tz``."""
        return cls(
            RecurrenceKind.CRON,
            tz=_tz_name(tz, f"cron recurrence {expression!r}"),
            expression=expression,
            earliest_start=earliest_start,
            expires=expires,
        )

    @classmethod
    def weekly(
        cls,
        days: str | Iterable[str],
        *,
        start: str | time,
        end: str | time | None = None,
        every: timedelta | None = None,
        tz: str | ZoneInfo = "UTC",
        earliest_start: datetime | None = None,
        expires: datetime | None = None,
    ) -> Recurrence:
        """Fire on ``days`` at ``start``, then every ``every`` until ``end`` (default: end of day), in ``tz``.

        ``days``: ``"mon-fri"``, ``"mon,wed,fri"``, ``"sat-sun"``, ``["mon", "thu"]``, ``"daily"``, ``"all"``.
        Without ``every`` it fires once a day at ``start``.
        """
        label = f"weekly recurrence {days!r}"
        return cls(
            RecurrenceKind.WEEKLY,
            tz=_tz_name(tz, label),
            days=_parse_days(days, label),
            start=_parse_time(start, "start", label),
            end=None if end is None else _parse_time(end, "end", label),
            interval=every,
            earliest_start=earliest_start,
            expires=expires,
        )

    @classmethod
    def every(
        cls,
        interval: timedelta,
        *,
        tz: str | ZoneInfo = "UTC",
        earliest_start: datetime | None = None,
        expires: datetime | None = None,
    ) -> Recurrence:
        """Fire every ``interval`` of real time from ``earliest_start`` (default 1970-01-01T00:00Z).

        ``tz`` only sets how :meth:`describe` shows times.
        """
        return cls(
            RecurrenceKind.EVERY,
            tz=_tz_name(tz, "every recurrence"),
            interval=interval,
            earliest_start=earliest_start,
            expires=expires,
        )

    @classmethod
    def once(cls, at: datetime, *, tz: str | ZoneInfo | None = None) -> Recurrence:
        """Fire once at the aware instant ``at``; ``tz`` defaults to ``at``'s zone when it is a ZoneInfo."""
        if tz is None:
            tz = at.tzinfo if isinstance(at, datetime) and isinstance(at.tzinfo, ZoneInfo) else "UTC"
        return cls(RecurrenceKind.ONCE, tz=_tz_name(tz, "once recurrence"), at=at)

    def __post_init__(self) -> None:
        if self.kind not in _KIND_VALUES:
            raise ValidationError(
                f"recurrence kind {self.kind!r} is not valid; use one of {', '.join(RecurrenceKind)}"
            )
        object.__setattr__(self, "kind", RecurrenceKind(self.kind))
        label = self._label()
        object.__setattr__(self, "_zone", _zone(self.tz, label))
        unused = {"expression", "days", "start", "end", "interval", "at"} - _KIND_FIELDS[self.kind]
        for name in sorted(unused):
            if getattr(self, name) not in (None, ()):
                raise ValidationError(
                    f"{label}: {name} does not apply to a {self.kind.lower()} recurrence; drop it"
                )
        for name in ("at", "earliest_start", "expires"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _aware(value, name, label))
        if self.earliest_start and self.expires and self.expires < self.earliest_start:
            raise ValidationError(
                f"{label}: expires {self.expires.isoformat()} is before earliest_start "
                f"{self.earliest_start.isoformat()}; move expires later or drop it"
            )
        if self.kind == RecurrenceKind.CRON:
            self._check_cron(label)
        elif self.kind == RecurrenceKind.WEEKLY:
            self._check_weekly(label)
        elif self.kind == RecurrenceKind.EVERY:
            self._check_every(label)
        else:
            self._check_once(label)

    def _check_cron(self, label: str) -> None:
        if not isinstance(self.expression, str):
            raise ValidationError(f"{label}: expression must be a string such as '0 2 * * *'")
        object.__setattr__(self, "_cron", _parse_cron(self.expression, label))

    def _check_weekly(self, label: str) -> None:
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValidationError(
                f"{label}: days must be weekday numbers 0 (Monday) to 6 (Sunday), got {self.days!r}"
            )
        object.__setattr__(self, "days", tuple(sorted(set(self.days))))
        if not isinstance(self.start, time):
            raise ValidationError(f"{label}: start is required; give e.g. start='08:00'")
        if self.interval is None:
            if self.end is not None:
                raise ValidationError(
                    f"{label}: end {_format_time(self.end)} has no effect without every; "
                    "set every=timedelta(minutes=...) or drop end"
                )
            return
        _positive_interval(self.interval, "every", label)
        if self.end is not None and self.end < self.start:
            raise ValidationError(
                f"{label}: end {_format_time(self.end)} is before start {_format_time(self.start)}; "
                "a window cannot cross midnight, so use two recurrences"
            )

    def _check_every(self, label: str) -> None:
        _positive_interval(self.interval, "interval", label)

    def _check_once(self, label: str) -> None:
        if self.at is None:
            raise ValidationError(f"{label}: at is required; give an aware datetime")

    def _label(self) -> str:
        kind = str(self.kind).lower()
        if self.kind == RecurrenceKind.CRON:
            return f"cron recurrence '{self.expression}'"
        if self.kind == RecurrenceKind.ONCE and isinstance(self.at, datetime):
            return f"once recurrence at {self.at.isoformat()}"
        return f"{kind} recurrence"

    # -- maths

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware), in UTC; ``None`` when there is none."""
        after = _aware(after, "after", self._label())
        if self.earliest_start is not None and after < self.earliest_start:
            after = self.earliest_start - _TICK
        try:
            fire = self._next_unbounded(after)
        except OverflowError:
            return None
        if fire is None or (self.expires is not None and fire > self.expires):
            return None
        return fire

    def _next_unbounded(self, after: datetime) -> datetime | None:
        if self._cron is not None:
            return _next_cron(self._cron, self._zone, after, self.expires)
        if self.kind == RecurrenceKind.WEEKLY:
            day = _wall(after, self._zone).date() - timedelta(days=1)
            for _ in range(_WEEKLY_SEARCH_DAYS):
                if day.weekday() in self.days:
                    fire = _next_in_window(self, day, self._zone, after)
                    if fire is not None:
                        return fire
                day += timedelta(days=1)
            return None
        if self.kind == RecurrenceKind.EVERY:
            assert self.interval is not None
            anchor = self.earliest_start or _EPOCH
            if after < anchor:
                return anchor
            return anchor + ((after - anchor) // self.interval + 1) * self.interval
        assert self.at is not None
        return self.at if self.at > after else None

    def validate(self, now: datetime) -> None:
        """Raise :class:`ValidationError` when this recurrence will never fire after ``now``."""
        label = self._label()
        now = _aware(now, "now", label)
        if self.next_after(now) is not None:
            return
        if self.kind == RecurrenceKind.ONCE:
            raise ValidationError(f"{label} is in the past (now is {now.isoformat()}); choose a later time")
        if self.expires is not None and self.expires <= now:
            raise ValidationError(
                f"{label}: expired at {self.expires.isoformat()} (now is {now.isoformat()}); "
                "move expires later or remove the recurrence"
            )
        window = f"between {(self.earliest_start or now).isoformat()} and {_opt_iso(self.expires)}"
        raise ValidationError(f"{label} has no fire time {window}; widen earliest_start / expires")

    # -- text and storage

    def cron_fields(self) -> CronFields | None:
        """What a cron recurrence's fields match (aliases expanded); ``None`` for the other kinds."""
        if self._cron is None:
            return None
        spec = self._cron
        return CronFields(
            spec.minutes,
            spec.hours,
            tuple(sorted(spec.days)),
            tuple(sorted(spec.months)),
            tuple(sorted(spec.weekdays)),
            spec.either_day,
        )

    def describe(self) -> str:
        """Human text, e.g. ``"Mon–Fri 08:00–18:00 every 30 min (Europe/Amsterdam)"``."""
        zone = self._zone
        if self.kind == RecurrenceKind.CRON:
            text = f"cron '{self.expression}'"
        elif self.kind == RecurrenceKind.WEEKLY:
            assert self.start is not None
            if self.interval is None:
                text = f"{_format_days(self.days)} at {_format_time(self.start)}"
            else:
                end = _format_time(self.end or _END_OF_DAY)
                span = f"{_format_time(self.start)}–{end}"
                text = f"{_format_days(self.days)} {span} every {_format_interval(self.interval)}"
        elif self.kind == RecurrenceKind.EVERY:
            assert self.interval is not None
            text = f"every {_format_interval(self.interval)}"
        else:
            assert self.at is not None
            text = f"once at {_format_instant(self.at, zone)}"
        text += f" ({self.tz})"
        if self.earliest_start is not None:
            text += f", from {_format_instant(self.earliest_start, zone)}"
        if self.expires is not None:
            text += f", until {_format_instant(self.expires, zone)}"
        return text

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict; :meth:`from_dict` turns it back into an equal Recurrence."""
        data: dict[str, object] = {"kind": str(self.kind), "tz": self.tz}
        if self.kind == RecurrenceKind.CRON:
            data["expression"] = self.expression
        elif self.kind == RecurrenceKind.WEEKLY:
            assert self.start is not None
            data["days"] = [_WEEKDAYS[day] for day in self.days]
            data["start"] = self.start.isoformat()
            data["end"] = None if self.end is None else self.end.isoformat()
            data["every_s"] = None if self.interval is None else self.interval.total_seconds()
        elif self.kind == RecurrenceKind.EVERY:
            assert self.interval is not None
            data["every_s"] = self.interval.total_seconds()
        else:
            data["at"] = _opt_iso(self.at)
        data["earliest_start"] = _opt_iso(self.earliest_start)
        data["expires"] = _opt_iso(self.expires)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Recurrence:
        """Rebuild a Recurrence from :meth:`to_dict`'s output, validating it again."""
        label = "stored recurrence"
        if not isinstance(data, Mapping):
            raise ValidationError(f"{label}: must be a mapping from to_dict(), got {type(data).__name__}")
        raw_kind = str(data.get("kind", ""))
        if raw_kind not in _KIND_VALUES:
            raise ValidationError(
                f"{label}: kind '{raw_kind}' is not valid{did_you_mean(raw_kind, list(RecurrenceKind))}; "
                f"use one of {', '.join(RecurrenceKind)}"
            )
        kind = RecurrenceKind(raw_kind)
        allowed = _COMMON_KEYS | _KIND_KEYS[kind]
        for key in data:
            if key not in allowed:
                raise ValidationError(
                    f"{label}: unknown key '{key}' for kind {kind}{did_you_mean(key, allowed)}; "
                    f"valid keys: {', '.join(sorted(allowed))}"
                )
        label = f"stored {kind.lower()} recurrence"
        earliest_start = _opt_datetime(data.get("earliest_start"), "earliest_start", label)
        expires = _opt_datetime(data.get("expires"), "expires", label)
        tz = data.get("tz", "UTC")
        if not isinstance(tz, str):
            raise ValidationError(f"{label}: tz must be a string, got {tz!r}")
        if kind == RecurrenceKind.CRON:
            expression = data.get("expression")
            if not isinstance(expression, str):
                raise ValidationError(f"{label}: expression must be a string, got {expression!r}")
            return cls.cron(expression, tz=tz, earliest_start=earliest_start, expires=expires)
        if kind == RecurrenceKind.WEEKLY:
            end = data.get("end")
            return cls.weekly(
                _days_value(data.get("days"), label),
                start=_str_value(data.get("start"), "start", label),
                end=None if end is None else _str_value(end, "end", label),
                every=_opt_seconds(data.get("every_s"), label),
                tz=tz,
                earliest_start=earliest_start,
                expires=expires,
            )
        if kind == RecurrenceKind.EVERY:
            interval = _opt_seconds(data.get("every_s"), label)
            if interval is None:
                raise ValidationError(f"{label}: every_s is required, e.g. 3600")
            return cls.every(interval, tz=tz, earliest_start=earliest_start, expires=expires)
        at = _opt_datetime(data.get("at"), "at", label)
        if at is None:
            raise ValidationError(f"{label}: at is required, e.g. '2026-12-24T17:00:00+00:00'")
        return cls(RecurrenceKind.ONCE, tz=tz, at=at, earliest_start=earliest_start, expires=expires)


def _tz_name(tz: object, label: str) -> str:
    zone = _zone(tz, label)
    return zone.key if isinstance(tz, ZoneInfo) else str(tz)


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _opt_datetime(value: object, what: str, label: str) -> datetime | None:
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


def _opt_seconds(value: object, label: str) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ValidationError(f"{label}: every_s must be a number of seconds, got {value!r}")


def _str_value(value: object, what: str, label: str) -> str:
    if isinstance(value, str):
        return value
    raise ValidationError(f"{label}: {what} must be a string such as '08:00', got {value!r}")


def _days_value(value: object, label: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(day, str) for day in value):
        return [str(day) for day in value]
    raise ValidationError(
        f"{label}: days must be a list of weekday names such as ['mon', 'tue'], got {value!r}"
    )


# -------------------------------------------------------------------------------------------- preview


def next_runs(
    recurrences: Sequence[Recurrence], after: datetime, count: int
) -> list[tuple[datetime, Recurrence]]:
    """The next ``count`` fire times of all ``recurrences`` after ``after``, merged and sorted.

    An instant produced by several recurrences appears once, attributed to the first of them in
    ``recurrences``.
    """
    after = _aware(after, "after", "next_runs")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValidationError(f"next_runs: count must be a whole number 0 or more, got {count!r}")
    heap = [(fire, i) for i, rec in enumerate(recurrences) if (fire := rec.next_after(after)) is not None]
    heapq.heapify(heap)
    runs: list[tuple[datetime, Recurrence]] = []
    while heap and len(runs) < count:
        fire, i = heapq.heappop(heap)
        if not runs or runs[-1][0] != fire:
            runs.append((fire, recurrences[i]))
        following = recurrences[i].next_after(fire)
        if following is not None:
            heapq.heappush(heap, (following, i))
    return runs
