"""The beat side's tables: one row per fire of a recurrence, and the lease that elects one beat on SQLite."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from jqm_celery.store.models import Base


class FireRow(Base):
    """A due instant of a recurrence that beat has claimed, and what came of it.

    The unique (recurrence, due instant) pair makes a second fire of the same instant impossible, whatever
    the beats do. ``sent_at`` stays empty until the run's canvas has reached the broker: a row left unsent
    by a beat that died is what recovery looks for.
    """

    __tablename__ = "jqm_fire"
    __table_args__ = (
        UniqueConstraint("recurrence_id", "due_at"),
        Index(
            "ix_jqm_fire_unsent",
            "fired_at",
            postgresql_where=text("sent_at IS NULL AND run_id IS NOT NULL"),
            sqlite_where=text("sent_at IS NULL AND run_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recurrence_id: Mapped[int] = mapped_column(Integer)
    package_name: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime | None]


class BeatLeaseRow(Base):
    """Who may tick: on SQLite one beat holds the lease and the others wait for it to expire."""

    __tablename__ = "jqm_beat_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]
