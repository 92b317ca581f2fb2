"""job queue

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jqm_queue",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("pool_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jqm_queue")),
    )
    op.create_table(
        "jqm_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_audit")),
    )
    op.create_index("ix_jqm_audit_package_id", "jqm_audit", ["package_name", "id"])
    op.create_table(
        "jqm_worker",
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hostname", name=op.f("pk_jqm_worker")),
    )
    with op.batch_alter_table("jqm_job") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    # Cleaning finished stand-alone jobs walks them oldest first.
    op.create_index("ix_jqm_job_finished_at", "jqm_job", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jqm_job_finished_at", table_name="jqm_job")
    with op.batch_alter_table("jqm_job") as batch:
        batch.drop_column("not_before")
    op.drop_table("jqm_worker")
    op.drop_index("ix_jqm_audit_package_id", table_name="jqm_audit")
    op.drop_table("jqm_audit")
    op.drop_table("jqm_queue")
