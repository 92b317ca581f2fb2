"""The notification tables: rules (per package or per queue) and every notification sent or failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jqm_celery.store.models import Base, defaulted


class NotificationRuleRow(Base):
    """One rule of a package's definition (``package_id``) or of a queue's stand-alone jobs (``queue``)."""

    __tablename__ = "jqm_notification_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int | None] = mapped_column(
        ForeignKey("jqm_package.id", ondelete="CASCADE"), index=True
    )
    queue: Mapped[str | None] = mapped_column(String(255), index=True)
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]


class NotificationRow(Base):
    """One notification of one event to one target; the unique key is what stops a second mail."""

    __tablename__ = "jqm_notification"
    __table_args__ = (
        UniqueConstraint("event_key", "target"),
        Index("ix_jqm_notification_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(120))
    #: An e-mail address or a webhook URL.
    target: Mapped[str] = mapped_column(String(500))
    channel: Mapped[str] = mapped_column(String(8))
    scenario: Mapped[str] = mapped_column(String(24))
    package_name: Mapped[str | None] = mapped_column(String(100), index=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = defaulted(Text, "")
    status: Mapped[str] = mapped_column(String(8))
    tries: Mapped[int] = defaulted(Integer, 0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
