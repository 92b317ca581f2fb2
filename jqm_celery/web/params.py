"""Path and query parameters shared by pages and API, bounded so that no input reaches the database raw."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import Path, Query, Request

from jqm_celery.manager import JobQueueManager

#: The largest id the store's INTEGER keys hold.
MAX_ID = 2**31 - 1
PACKAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$"

RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]
Position = Annotated[int, Path(ge=1, le=10_000)]
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


OptionalText = Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")]


BeforeId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
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
