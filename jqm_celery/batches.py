"""Deleting old rows in batches (clean of stand-alone jobs, run retention): the cut-off and batch size
checked the same way, one transaction per batch, progress reported after each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from jqm_celery.errors import ValidationError

#: How many rows one transaction deletes.
CLEAN_BATCH = 5_000


def cut_off(owner: str, now: datetime, older_than: timedelta, batch_size: int, example: str) -> datetime:
    """The instant before which rows go; bad input is refused before anything is deleted."""
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValidationError(
            f"{owner}: older_than must be a timedelta ≥ 0, got {older_than!r}; e.g. {example}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"{owner}: batch_size must be a whole number ≥ 1, got {batch_size!r}")
    return now - older_than


def delete_in_batches(
    total: int,
    delete_batch: Callable[[], tuple[int, int]],
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    """Call ``delete_batch`` (rows, log entries deleted) until it deletes nothing; the sums.

    ``progress(rows deleted so far, rows to delete)`` is called before the first batch and after each.
    """
    rows = entries = 0
    if progress is not None:
        progress(0, total)
    while True:
        deleted, logs = delete_batch()
        if not deleted:
            return rows, entries
        rows += deleted
        entries += logs
        if progress is not None:
            progress(rows, max(total, rows))
