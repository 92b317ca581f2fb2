"""The web UI's tables: users with a role, their API tokens, and the web's own settings (its secret)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jqm_celery.store.models import Base, RunRow


class WebUserRow(Base):
    """A person who signs in to the web UI or calls the REST API."""

    __tablename__ = "jqm_web_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    #: ``scrypt$n$r$p$salt$hash`` (base64 salt and hash).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebTokenRow(Base):
    """An API token: only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = "jqm_web_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("jqm_web_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class WebSettingRow(Base):
    """A value the web UI keeps for itself, such as the session secret when ``jqm_web_secret`` is unset."""

    __tablename__ = "jqm_web_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The packages page shows each package's last run: the newest run of a package by index, not by scan.
Index("ix_jqm_run_package_name_id", RunRow.package_name, RunRow.id)
