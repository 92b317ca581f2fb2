"""The job queue's tables: defined queues, the audit trail, the heartbeat of every worker, and when the
workers' daily chores last ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jqm_celery.store.models import Base, defaulted


class QueueRow(Base):
    """A defined queue: the pool size ``jqm worker`` starts for it."""

    __tablename__ = "jqm_queue"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    pool_size: Mapped[int] = mapped_column(Integer)
    #: No job of a paused queue starts (its claim is refused); running ones finish.
    paused: Mapped[bool] = defaulted(Boolean, False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditRow(Base):
    """Who changed what, and when."""

    __tablename__ = "jqm_audit"
    __table_args__ = (Index("ix_jqm_audit_package_id", "package_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(24))
    target: Mapped[str] = mapped_column(String(255))
    package_name: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str] = defaulted(Text, "")


class WorkerRow(Base):
    """A worker's heartbeat: a worker that has not beaten for a while is gone, with its running jobs."""

    __tablename__ = "jqm_worker"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    #: The queues it consumes, comma-separated, as of its last heartbeat.
    queues: Mapped[str] = defaulted(Text, "")


class ChoreRow(Base):
    """When a daily chore of the workers (run retention) last ran: one worker of many claims each day's."""

    __tablename__ = "jqm_chore"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime]
