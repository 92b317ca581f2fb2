"""Keyset paging for the newest-first lists (runs, jobs, audit, log entries): a page is the rows before an
id (the last id of the page before: the cursor) within a time range, so the millionth row costs what the
first does. Pure: no database; the store applies a ``Window`` to its query with ``keyset``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from jqm_celery.errors import ValidationError

_Query = TypeVar("_Query", bound=Any)


@dataclass(frozen=True)
class Window:
    """Rows with an id below ``before_id`` (None: from the newest) and a time in [``since``, ``until``)."""

    before_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


#: The newest page, unfiltered.
NEWEST = Window()


def window(
    owner: str, before_id: int | None = None, since: datetime | None = None, until: datetime | None = None
) -> Window:
    """A checked ``Window``; bad input is refused with what to pass instead."""
    if before_id is not None and (
        isinstance(before_id, bool) or not isinstance(before_id, int) or before_id < 1
    ):
        raise ValidationError(
            f"{owner}: before_id must be a whole number ≥ 1 — the id of the last row of the page before "
            f"(the cursor) — got {before_id!r}; leave it out for the newest page"
        )
    for label, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(
                f"{owner}: {label} must be an aware datetime, got {value!r}; "
                "e.g. datetime(2026, 12, 1, tzinfo=UTC)"
            )
    if since is not None and until is not None and since >= until:
        raise ValidationError(
            f"{owner}: since ({since:%Y-%m-%d %H:%M}) must be before until ({until:%Y-%m-%d %H:%M})"
        )
    return Window(before_id, since, until)


def keyset(query: _Query, window: Window, id_column: Any, time_column: Any) -> _Query:
    """``query`` limited to ``window`` (it is ordered newest first by ``id_column`` already)."""
    if window.before_id is not None:
        query = query.where(id_column < window.before_id)
    if window.since is not None:
        query = query.where(time_column >= window.since)
    if window.until is not None:
        query = query.where(time_column < window.until)
    return query
