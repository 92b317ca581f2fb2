"""Path and query parameters shared by pages and API, bounded so that no input reaches the database raw."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BeforeValidator

from jqm_celery.manager import JobQueueManager

#: The largest id the store's INTEGER keys hold.
MAX_ID = 2**31 - 1
PACKAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$"


def _digits_only(value: object) -> object:
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 20):
        raise ValueError("must be a whole number written with digits only, e.g. 42")
    return value


#: A number in a URL is digits only: "1.0", "1_0", " 5" or "1e3" are refused (422), not read as numbers.
Digits = BeforeValidator(_digits_only)
RunId = Annotated[int, Path(ge=1, le=MAX_ID), Digits]
JobId = Annotated[int, Path(ge=1, le=MAX_ID), Digits]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID), Digits]
Position = Annotated[int, Path(ge=1, le=10_000), Digits]
PackageName = Annotated[str, Path(pattern=PACKAGE_NAME, max_length=100)]
QueueName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$", max_length=255)]


def manager(request: Request) -> JobQueueManager:
    jqm: JobQueueManager = request.app.state.jqm
    return jqm


def day_start(value: date | None, zone: tzinfo = UTC) -> datetime | None:
    """The first instant of the day in ``zone`` (the API's days are UTC days; the pages' the viewer's)."""
    return None if value is None else datetime.combine(value, time(), tzinfo=zone)


def day_end(value: date | None, zone: tzinfo = UTC) -> datetime | None:
    """The instant after the day: ``until`` a date includes that whole day (the last day there is: no
    bound at all)."""
    if value is None or value >= date.max:
        return None
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=zone)


def _iso_day(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a day written YYYY-MM-DD, e.g. 2026-12-02")
    return value


#: A day filter (``since`` / ``until``): YYYY-MM-DD only, not a number of seconds since 1970.
Day = Annotated[date | None, BeforeValidator(_iso_day)]
OptionalText = Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")]


BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID), Digits]
#: A run or job id to filter by.
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID), Digits]
#: The response header of a list endpoint that has more rows: pass it as ``before_id`` for the next page.
NEXT_HEADER = "X-Next-Before-Id"


def split_page(rows: list[Any], limit: int) -> tuple[list[Any], int | None]:
    """A page read with ``limit + 1`` rows, newest first: the page, and the cursor of the next one (the
    last id shown) if there is more."""
    if len(rows) <= limit:
        return rows, None
    shown = rows[:limit]
    return shown, int(shown[-1].id)


def days(value: str) -> timedelta | None:
    """A form's "older than N days": a number from 0 to 36,500, else None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return timedelta(days=number) if 0 <= number <= 36_500 else None
