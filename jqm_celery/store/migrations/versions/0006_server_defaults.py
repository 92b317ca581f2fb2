"""column defaults in the database

Revision ID: 0006
Revises: 0005

The store's statements name only the columns they set; the others take the database's default.
SQLite changes a column's default by rebuilding the table (Alembic's batch mode), which is safe for
tables no other table refers to. ``jqm_package`` and ``jqm_run`` are left as they are on SQLite:
dropping them under foreign keys would delete their entries and jobs (``ON DELETE CASCADE``); their
columns keep SQLAlchemy's default too (``models.defaulted_in_both``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: (table, column, type, default): the columns whose model is ``defaulted(...)`` (store/models.py).
DEFAULTS: list[tuple[str, str, sa.types.TypeEngine[object], object]] = [
    ("jqm_package", "allow_overlap", sa.Boolean(), False),
    ("jqm_package", "description", sa.Text(), ""),
    ("jqm_package", "version", sa.Integer(), 1),
    ("jqm_run", "stop_package_after", sa.Boolean(), False),
    ("jqm_job", "position", sa.Integer(), 0),
    ("jqm_job", "run_order", sa.Integer(), 0),
    ("jqm_job", "description", sa.Text(), ""),
    ("jqm_job", "retry", sa.Integer(), 0),
    ("jqm_job", "max_retries", sa.Integer(), 0),
    ("jqm_job", "current_delay_s", sa.Float(), 0.0),
    ("jqm_job", "attempts", sa.Integer(), 0),
    ("jqm_log_entry", "retry", sa.Integer(), 0),
    ("jqm_notification", "subject", sa.Text(), ""),
    ("jqm_notification", "tries", sa.Integer(), 0),
    ("jqm_audit", "detail", sa.Text(), ""),
]


def _clause(value: object) -> sa.sql.ClauseElement | str:
    if isinstance(value, bool):
        return sa.true() if value else sa.false()
    if isinstance(value, int | float):
        return sa.text(repr(value))
    return str(value)


#: Tables that other tables refer to with ``ON DELETE CASCADE``: not rebuilt on SQLite.
REFERRED_TO = frozenset({"jqm_package", "jqm_run"})


def _set(default: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    tables = dict.fromkeys(table for table, *_ in DEFAULTS)
    for table in tables:
        if sqlite and table in REFERRED_TO:
            continue
        with op.batch_alter_table(table) as batch:
            for name, column, type_, value in DEFAULTS:
                if name == table:
                    batch.alter_column(
                        column,
                        existing_type=type_,
                        existing_nullable=False,
                        server_default=_clause(value) if default else None,
                    )


def upgrade() -> None:
    _set(default=True)


def downgrade() -> None:
    _set(default=False)
