"""beat scheduling

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UNSENT = "sent_at IS NULL AND run_id IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "jqm_fire",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recurrence_id", sa.Integer(), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_fire")),
        sa.UniqueConstraint("recurrence_id", "due_at", name=op.f("uq_jqm_fire_recurrence_id_due_at")),
    )
    with op.batch_alter_table("jqm_fire", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jqm_fire_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "ix_jqm_fire_unsent",
            ["fired_at"],
            unique=False,
            postgresql_where=sa.text(_UNSENT),
            sqlite_where=sa.text(_UNSENT),
        )
    op.create_table(
        "jqm_beat_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jqm_beat_lease")),
    )


def downgrade() -> None:
    op.drop_table("jqm_beat_lease")
    with op.batch_alter_table("jqm_fire", schema=None) as batch_op:
        batch_op.drop_index("ix_jqm_fire_unsent")
        batch_op.drop_index(batch_op.f("ix_jqm_fire_run_id"))
    op.drop_table("jqm_fire")
