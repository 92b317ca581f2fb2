"""The store's tables (SQLAlchemy 2.0). Schema changes go through Alembic migrations in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TextClause,
    TypeDecorator,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column
from sqlalchemy.types import TypeEngine


def defaulted(type_: type[TypeEngine[Any]], value: bool | int | float | str) -> MappedColumn[Any]:
    """A column whose default lives in the database (migration 0006).

    A statement may leave it out whatever runs it: the PostgreSQL writer's prepared statements skip
    SQLAlchemy's own defaults, and SQLAlchemy would name a column that has one in every INSERT.
    """
    return mapped_column(type_, server_default=server_default(value))


def defaulted_in_both(type_: type[TypeEngine[Any]], value: bool | int | float | str) -> MappedColumn[Any]:
    """``defaulted``, with SQLAlchemy's default as well: the columns of tables other tables refer to,
    which SQLite could not be given a default without rebuilding them (see migration 0006)."""
    return mapped_column(type_, default=value, server_default=server_default(value))


def server_default(value: bool | int | float | str) -> ColumnElement[Any] | TextClause | str:
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int | float):
        return text(repr(value))
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: jqm stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class PackageRow(Base):
    __tablename__ = "jqm_package"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    on_error: Mapped[str] = mapped_column(String(24))
    catch_up: Mapped[str] = mapped_column(String(8))
    allow_overlap: Mapped[bool] = defaulted_in_both(Boolean, False)
    description: Mapped[str] = defaulted_in_both(Text, "")
    version: Mapped[int] = defaulted_in_both(Integer, 1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EntryRow(Base):
    __tablename__ = "jqm_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("jqm_package.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]]


class RecurrenceRow(Base):
    __tablename__ = "jqm_recurrence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("jqm_package.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    last_fire_at: Mapped[datetime | None]


class RunRow(Base):
    __tablename__ = "jqm_run"
    __table_args__ = (
        Index("ix_jqm_run_package_status", "package_name", "status"),
        Index("ix_jqm_run_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(32))
    on_error: Mapped[str] = mapped_column(String(24))
    stop_package_after: Mapped[bool] = defaulted_in_both(Boolean, False)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobRow(Base):
    __tablename__ = "jqm_job"
    __table_args__ = (
        Index("ix_jqm_job_run_status", "run_id", "status"),
        Index("ix_jqm_job_status_queue", "status", "queue"),
        Index("ix_jqm_job_finished_at", "finished_at"),
        Index("ix_jqm_job_package_id", "package_name", "id"),
        Index(
            "ix_jqm_job_queue_deferred",
            "queue",
            postgresql_where=text("deferred_at IS NOT NULL"),
            sqlite_where=text("deferred_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("jqm_run.id", ondelete="CASCADE"))
    package_name: Mapped[str | None] = mapped_column(String(100))
    position: Mapped[int] = defaulted(Integer, 0)
    task: Mapped[str] = mapped_column(String(255))
    args: Mapped[list[Any]]
    kwargs: Mapped[dict[str, Any]]
    run_order: Mapped[int] = defaulted(Integer, 0)
    queue: Mapped[str | None] = mapped_column(String(255))
    retry_policy: Mapped[dict[str, Any]]
    soft_time_limit_s: Mapped[float | None] = mapped_column(Float)
    time_limit_s: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = defaulted(Text, "")
    status: Mapped[str] = mapped_column(String(16))
    retry: Mapped[int] = defaulted(Integer, 0)
    max_retries: Mapped[int] = defaulted(Integer, 0)
    current_delay_s: Mapped[float] = defaulted(Float, 0.0)
    attempts: Mapped[int] = defaulted(Integer, 0)
    worker: Mapped[str | None] = mapped_column(String(255))
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: A delayed stand-alone job does not start before this.
    not_before: Mapped[datetime | None]
    #: When its message was refused because its queue was paused; it is sent again on resume.
    deferred_at: Mapped[datetime | None]


class LogEntryRow(Base):
    __tablename__ = "jqm_log_entry"
    __table_args__ = (
        Index("ix_jqm_log_entry_package_id", "package_name", "id"),
        Index("ix_jqm_log_entry_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    package_name: Mapped[str | None] = mapped_column(String(100))
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    task: Mapped[str | None] = mapped_column(String(255))
    run_order: Mapped[int | None] = mapped_column(Integer)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(255))
    retry: Mapped[int] = defaulted(Integer, 0)
    planned_delay_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
