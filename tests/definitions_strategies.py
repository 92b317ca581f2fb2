"""Hypothesis strategies for whole definitions: packages with every field of their entries, retry
policies, recurrences (all four kinds) and notification rules drawn, for round-trip tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from hypothesis import strategies as st

from jqm_celery import Entry, OnError, Package, Recurrence, RetryPolicy
from jqm_celery.notifications.rules import Notify, Rule, Scenario, Webhook
from jqm_celery.recurrence import CatchUp, RecurrenceKind

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
CRONS = ["0 2 * * *", "*/15 8-18 * * mon-fri", "30 3 1 * *", "@hourly", "0 0 29 2 *", "5 4 * jan,jul sun"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Text a person types into a form: no control characters other than line feeds.
typed_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="\n"), max_size=40
)
#: Any text a store can hold (jqm_celery/storable.py): no NUL, no lone surrogate.
_storable_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_storable_chars, max_size=12)
)
json_values = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(_storable_chars, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
_micros = st.integers(1, 10**11).map(lambda us: timedelta(microseconds=us))


@st.composite
def retry_policies(draw: st.DrawFn) -> RetryPolicy:
    base = draw(st.integers(0, 10**9).map(lambda ms: timedelta(milliseconds=ms)))
    ceiling = base + draw(st.integers(0, 10**9).map(lambda ms: timedelta(milliseconds=ms)))
    return RetryPolicy(
        max_retries=draw(st.integers(0, 50)),
        base_delay=base,
        factor=draw(st.floats(1, 100, allow_nan=False)),
        max_delay=ceiling,
        jitter=draw(st.booleans()),
    )


@st.composite
def entries(draw: st.DrawFn, tasks: Sequence[str]) -> Entry:
    return Entry(
        draw(st.sampled_from(tasks)),
        args=draw(st.lists(json_values, max_size=3)),
        kwargs=draw(st.dictionaries(st.text(_storable_chars, max_size=6), json_values, max_size=3)),
        run_order=draw(st.integers(0, 10_000)),
        retry=draw(
            st.just(RetryPolicy(max_retries=0, base_delay=timedelta(0), max_delay=timedelta(0)))
            | retry_policies()
        ),
        queue=draw(st.none() | st.sampled_from(["billing", "q.slow", "reports-eu"])),
        soft_time_limit=draw(st.none() | _micros),
        time_limit=draw(st.none() | _micros),
        description=draw(typed_text),
    )


@st.composite
def recurrences(draw: st.DrawFn) -> Recurrence:
    kind = draw(st.sampled_from(list(RecurrenceKind)))
    tz = draw(st.sampled_from(ZONES))
    earliest_start = draw(st.none() | instants)
    expires = draw(st.none() | instants)
    if earliest_start and expires and expires < earliest_start:
        earliest_start, expires = expires, earliest_start
    bounds: dict[str, Any] = {"earliest_start": earliest_start, "expires": expires}
    if kind is RecurrenceKind.CRON:
        return Recurrence.cron(draw(st.sampled_from(CRONS)), tz=tz, **bounds)
    if kind is RecurrenceKind.WEEKLY:
        days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
        start = draw(st.times())
        every = draw(st.none() | st.integers(1, 86_400 * 7).map(lambda s: timedelta(seconds=s)))
        end = None
        if every is not None:
            end = draw(st.none() | st.times(min_value=start, max_value=time.max))
        return Recurrence.weekly(sorted(days), start=start, end=end, every=every, tz=tz, **bounds)
    if kind is RecurrenceKind.EVERY:
        every = draw(st.integers(1, 86_400 * 30).map(lambda s: timedelta(seconds=s)))
        return Recurrence.every(every, tz=tz, **bounds)
    return Recurrence(RecurrenceKind.ONCE, tz=tz, at=draw(instants), **bounds)


_addresses = st.from_regex(r"[a-z][a-z0-9.+_-]{0,8}@[a-z]{1,8}\.(com|nl|org)", fullmatch=True)
_scenarios = st.sets(st.sampled_from(list(Scenario)), min_size=1)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    if draw(st.booleans()):
        return Notify(draw(st.lists(_addresses, min_size=1, max_size=3, unique=True)), on=draw(_scenarios))
    path = draw(st.from_regex(r"/[a-z0-9/_-]{0,12}", fullmatch=True))
    return Webhook(f"https://hooks.example.com{path}", on=draw(_scenarios))


@st.composite
def packages(draw: st.DrawFn, name: str, tasks: Sequence[str]) -> Package:
    return Package(
        name,
        entries=draw(st.lists(entries(tasks), min_size=1, max_size=3)),
        on_error=draw(st.sampled_from(list(OnError))),
        recurrences=draw(st.lists(recurrences(), max_size=3)),
        catch_up=draw(st.sampled_from(list(CatchUp))),
        allow_overlap=draw(st.booleans()),
        description=draw(typed_text),
        notifications=draw(st.lists(rules(), max_size=2)),
    )
