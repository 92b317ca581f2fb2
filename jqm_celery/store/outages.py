"""A database that cannot be reached for a while: which errors that is, and a write retried through it.

A job's claim and its end retry such errors with backoff for a bounded time (``jqm_store_retry_s``)
before they give up with ``StoreUnavailable``; the runtime then keeps the job's message (see
``Runtime.execute_job``). Errors that say the statement itself is wrong are not retried.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from jqm_celery.errors import JQMError

logger = logging.getLogger("jqm_celery")

T = TypeVar("T")

#: The first pause between two tries of a write, doubled after each failed try up to ``MAX_PAUSE_S``.
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 5.0


class StoreUnavailable(JQMError):
    """Raised when a write of the store still failed with a database outage after its retry time."""


def _driver_outage_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL is an extra
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


#: The exception types of an outage (``is_outage`` also knows a disconnect of any other DBAPI error).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    *_driver_outage_errors(),
)


def is_outage(error: BaseException) -> bool:
    """True if ``error`` says the database could not be reached or the connection was lost (or, on
    SQLite, that the file stayed locked or could not be read or written)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # Raised by the driver itself (store/driver.py), as SQLAlchemy raises it wrapped in its own
    # OperationalError; sqlite3 is looked up, not imported, so that a worker on PostgreSQL never loads it.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(error, sqlite3.OperationalError):
        return True
    return isinstance(error, OUTAGE_ERRORS)


def retry_write(write: Callable[[bool], T], within_s: float, what: str) -> T:
    """``write(retried)`` until it succeeds, retrying outages with backoff for ``within_s`` seconds.

    ``retried`` is True from the second try on: a write whose commit may have landed before its
    connection was lost is written so that a second try finds it (see ``AttemptStore.claim_job``).
    Raises ``StoreUnavailable`` when the time is up.
    """
    deadline = time.monotonic() + within_s
    pause_s = FIRST_PAUSE_S
    retried = False
    while True:
        try:
            return write(retried)
        except Exception as error:
            if not is_outage(error) or isinstance(error, StoreUnavailable):
                raise
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise StoreUnavailable(
                    f"{what}: the database could not be reached for {within_s:g} s ({_said(error)}); "
                    "is it running? (jqm_store_retry_s sets how long a write is retried)"
                ) from error
            if not retried:
                logger.warning("jqm: %s failed (%s); retrying for up to %g s", what, _said(error), within_s)
            time.sleep(min(pause_s, left_s))
            pause_s = min(pause_s * 2, MAX_PAUSE_S)
            retried = True


def _said(error: BaseException) -> str:
    """The first line of what the driver said (SQLAlchemy adds the statement and a link)."""
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0] if text else type(error).__name__
