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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from jqm_celery import cron
from jqm_celery import recurrence_values as values
from jqm_celery.cron import CronFields
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
_WEEKLY_SEARCH_DAYS = 15


def _next_in_window(rec: Recurrence, day: date, zone: ZoneInfo, after: datetime) -> datetime | None:
    assert rec.start is not None
    start = values.resolve(datetime.combine(day, rec.start), zone)
    if after < start:
        return start
    if rec.interval is None:
        return None
    end = values.resolve(datetime.combine(day, rec.end or values.END_OF_DAY), zone)
    fire = start + ((after - start) // rec.interval + 1) * rec.interval
    return fire if fire <= end else None


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
    _cron: cron.CronSpec | None = field(init=False, repr=False, compare=False, default=None)

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
            tz=values.tz_name(tz, f"cron recurrence {expression!r}"),
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
            tz=values.tz_name(tz, label),
            days=values.parse_days(days, label),
            start=values.parse_time(start, "start", label),
            end=None if end is None else values.parse_time(end, "end", label),
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
            tz=values.tz_name(tz, "every recurrence"),
            interval=interval,
            earliest_start=earliest_start,
            expires=expires,
        )

    @classmethod
    def once(cls, at: datetime, *, tz: str | ZoneInfo | None = None) -> Recurrence:
        """Fire once at the aware instant ``at``; ``tz`` defaults to ``at``'s zone when it is a ZoneInfo."""
        if tz is None:
            tz = at.tzinfo if isinstance(at, datetime) and isinstance(at.tzinfo, ZoneInfo) else "UTC"
        return cls(RecurrenceKind.ONCE, tz=values.tz_name(tz, "once recurrence"), at=at)

    def __post_init__(self) -> None:
        if self.kind not in _KIND_VALUES:
            raise ValidationError(
                f"recurrence kind {self.kind!r} is not valid; use one of {', '.join(RecurrenceKind)}"
            )
        object.__setattr__(self, "kind", RecurrenceKind(self.kind))
        label = self._label()
        object.__setattr__(self, "_zone", values.zone_info(self.tz, label))
        unused = {"expression", "days", "start", "end", "interval", "at"} - _KIND_FIELDS[self.kind]
        for name in sorted(unused):
            if getattr(self, name) not in (None, ()):
                raise ValidationError(
                    f"{label}: {name} does not apply to a {self.kind.lower()} recurrence; drop it"
                )
        for name in ("at", "earliest_start", "expires"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, values.aware(value, name, label))
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
        object.__setattr__(self, "_cron", cron.parse_cron(self.expression, label))

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
                    f"{label}: end {values.format_time(self.end)} has no effect without every; "
                    "set every=timedelta(minutes=...) or drop end"
                )
            return
        values.positive_interval(self.interval, "every", label)
        if self.end is not None and self.end < self.start:
            raise ValidationError(
                f"{label}: end {values.format_time(self.end)} is before start "
                f"{values.format_time(self.start)}; "
                "a window cannot cross midnight, so use two recurrences"
            )

    def _check_every(self, label: str) -> None:
        values.positive_interval(self.interval, "interval", label)

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
        after = values.aware(after, "after", self._label())
        if self.earliest_start is not None and after < self.earliest_start:
            after = self.earliest_start - values.TICK
        try:
            fire = self._next_unbounded(after)
        except OverflowError:
            return None
        if fire is None or (self.expires is not None and fire > self.expires):
            return None
        return fire

    def _next_unbounded(self, after: datetime) -> datetime | None:
        if self._cron is not None:
            return cron.next_cron(self._cron, self._zone, after, self.expires)
        if self.kind == RecurrenceKind.WEEKLY:
            day = values.wall_time(after, self._zone).date() - timedelta(days=1)
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
        now = values.aware(now, "now", label)
        if self.next_after(now) is not None:
            return
        if self.kind == RecurrenceKind.ONCE:
            raise ValidationError(f"{label} is in the past (now is {now.isoformat()}); choose a later time")
        if self.expires is not None and self.expires <= now:
            raise ValidationError(
                f"{label}: expired at {self.expires.isoformat()} (now is {now.isoformat()}); "
                "move expires later or remove the recurrence"
            )
        window = f"between {(self.earliest_start or now).isoformat()} and {values.opt_iso(self.expires)}"
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
                text = f"{values.format_days(self.days)} at {values.format_time(self.start)}"
            else:
                end = values.format_time(self.end or values.END_OF_DAY)
                span = f"{values.format_time(self.start)}–{end}"
                text = f"{values.format_days(self.days)} {span} every {values.format_interval(self.interval)}"
        elif self.kind == RecurrenceKind.EVERY:
            assert self.interval is not None
            text = f"every {values.format_interval(self.interval)}"
        else:
            assert self.at is not None
            text = f"once at {values.format_instant(self.at, zone)}"
        text += f" ({self.tz})"
        if self.earliest_start is not None:
            text += f", from {values.format_instant(self.earliest_start, zone)}"
        if self.expires is not None:
            text += f", until {values.format_instant(self.expires, zone)}"
        return text

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict; :meth:`from_dict` turns it back into an equal Recurrence."""
        data: dict[str, object] = {"kind": str(self.kind), "tz": self.tz}
        if self.kind == RecurrenceKind.CRON:
            data["expression"] = self.expression
        elif self.kind == RecurrenceKind.WEEKLY:
            assert self.start is not None
            data["days"] = [values.WEEKDAYS[day] for day in self.days]
            data["start"] = self.start.isoformat()
            data["end"] = None if self.end is None else self.end.isoformat()
            data["every_s"] = None if self.interval is None else self.interval.total_seconds()
        elif self.kind == RecurrenceKind.EVERY:
            assert self.interval is not None
            data["every_s"] = self.interval.total_seconds()
        else:
            data["at"] = values.opt_iso(self.at)
        data["earliest_start"] = values.opt_iso(self.earliest_start)
        data["expires"] = values.opt_iso(self.expires)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Recurrence:
        """Rebuild a Recurrence from :meth:`to_dict`'s output, validating it again."""
        return _from_dict(data)


def _from_dict(data: Mapping[str, object]) -> Recurrence:
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
    earliest_start = values.opt_datetime(data.get("earliest_start"), "earliest_start", label)
    expires = values.opt_datetime(data.get("expires"), "expires", label)
    tz = data.get("tz", "UTC")
    if not isinstance(tz, str):
        raise ValidationError(f"{label}: tz must be a string, got {tz!r}")
    if kind == RecurrenceKind.CRON:
        expression = data.get("expression")
        if not isinstance(expression, str):
            raise ValidationError(f"{label}: expression must be a string, got {expression!r}")
        return Recurrence.cron(expression, tz=tz, earliest_start=earliest_start, expires=expires)
    if kind == RecurrenceKind.WEEKLY:
        end = data.get("end")
        return Recurrence.weekly(
            values.days_value(data.get("days"), label),
            start=values.str_value(data.get("start"), "start", label),
            end=None if end is None else values.str_value(end, "end", label),
            every=values.opt_seconds(data.get("every_s"), label),
            tz=tz,
            earliest_start=earliest_start,
            expires=expires,
        )
    if kind == RecurrenceKind.EVERY:
        interval = values.opt_seconds(data.get("every_s"), label)
        if interval is None:
            raise ValidationError(f"{label}: every_s is required, e.g. 3600")
        return Recurrence.every(interval, tz=tz, earliest_start=earliest_start, expires=expires)
    at = values.opt_datetime(data.get("at"), "at", label)
    if at is None:
        raise ValidationError(f"{label}: at is required, e.g. '2026-12-24T17:00:00+00:00'")
    return Recurrence(RecurrenceKind.ONCE, tz=tz, at=at, earliest_start=earliest_start, expires=expires)


# -------------------------------------------------------------------------------------------- preview


def next_runs(
    recurrences: Sequence[Recurrence], after: datetime, count: int
) -> list[tuple[datetime, Recurrence]]:
    """The next ``count`` fire times of all ``recurrences`` after ``after``, merged and sorted.

    An instant produced by several recurrences appears once, attributed to the first of them in
    ``recurrences``.
    """
    after = values.aware(after, "after", "next_runs")
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
