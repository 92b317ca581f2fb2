"""What the store tells its listeners after a transaction has committed: one value per recorded event.

Listeners (the notifier) act on events off the store's transactions, so a slow or failing listener never
holds a lock or undoes what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jqm_celery.statuses import LogKind


@dataclass(frozen=True)
class Event:
    """A run or package event, or a failed attempt, as it was just committed."""

    kind: LogKind
    status: str
    at: datetime
    package: str | None = None
    run_id: int | None = None
    job_id: int | None = None
    task: str | None = None
    #: The attempt's log entry, for failed attempts.
    log_id: int | None = None
    error: str | None = None
    message: str | None = None
    #: False when the store knew, as it recorded the event, that its package has no notification rules.
    notify: bool = True
