"""What the notification ledger hands back: one record per (event, target)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"


class NotificationStatus(StrEnum):
    #: Not sent yet: waiting for its first try or for a retry.
    PENDING = "PENDING"
    #: A worker is handing it to the SMTP server (or webhook) right now.
    SENDING = "SENDING"
    SENT = "SENT"
    #: Still refused after every retry; a NOTIFICATION_FAILED log entry says why.
    FAILED = "FAILED"


@dataclass(frozen=True)
class Notification:
    """One notification of one event to one e-mail address or webhook."""

    id: int
    event_key: str
    channel: Channel
    target: str
    scenario: str
    package: str | None
    run_id: int | None
    job_id: int | None
    subject: str
    status: NotificationStatus
    tries: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
