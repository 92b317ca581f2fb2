"""web users, API tokens and web settings

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jqm_web_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_web_user")),
        sa.UniqueConstraint("name", name=op.f("uq_jqm_web_user_name")),
    )
    op.create_table(
        "jqm_web_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["jqm_web_user.id"],
            name=op.f("fk_jqm_web_token_user_id_jqm_web_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_web_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_jqm_web_token_token_hash")),
    )
    op.create_index("ix_jqm_web_token_user_id", "jqm_web_token", ["user_id"])
    op.create_table(
        "jqm_web_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jqm_web_setting")),
    )
    op.create_index("ix_jqm_run_package_name_id", "jqm_run", ["package_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_jqm_run_package_name_id", table_name="jqm_run")
    op.drop_table("jqm_web_setting")
    op.drop_index("ix_jqm_web_token_user_id", table_name="jqm_web_token")
    op.drop_table("jqm_web_token")
    op.drop_table("jqm_web_user")
