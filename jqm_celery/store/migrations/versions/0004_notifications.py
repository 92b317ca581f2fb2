"""notifications

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jqm_notification_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["jqm_package.id"],
            name=op.f("fk_jqm_notification_rule_package_id_jqm_package"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_notification_rule")),
    )
    op.create_index("ix_jqm_notification_rule_package_id", "jqm_notification_rule", ["package_id"])
    op.create_index("ix_jqm_notification_rule_queue", "jqm_notification_rule", ["queue"])
    op.create_table(
        "jqm_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=120), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("scenario", sa.String(length=24), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_notification")),
        sa.UniqueConstraint("event_key", "target", name=op.f("uq_jqm_notification_event_key_target")),
    )
    op.create_index("ix_jqm_notification_status_id", "jqm_notification", ["status", "id"])
    op.create_index("ix_jqm_notification_package_name", "jqm_notification", ["package_name"])


def downgrade() -> None:
    op.drop_index("ix_jqm_notification_package_name", table_name="jqm_notification")
    op.drop_index("ix_jqm_notification_status_id", table_name="jqm_notification")
    op.drop_table("jqm_notification")
    op.drop_index("ix_jqm_notification_rule_queue", table_name="jqm_notification_rule")
    op.drop_index("ix_jqm_notification_rule_package_id", table_name="jqm_notification_rule")
    op.drop_table("jqm_notification_rule")
