"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:40:08.558634
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jqm_log_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("task", sa.String(length=255), nullable=True),
        sa.Column("run_order", sa.Integer(), nullable=True),
        sa.Column("celery_task_id", sa.String(length=64), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("planned_delay_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_log_entry")),
    )
    with op.batch_alter_table("jqm_log_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jqm_log_entry_job_id"), ["job_id"], unique=False)
        batch_op.create_index("ix_jqm_log_entry_package_id", ["package_name", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jqm_log_entry_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_jqm_log_entry_status_id", ["status", "id"], unique=False)

    op.create_table(
        "jqm_package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("on_error", sa.String(length=24), nullable=False),
        sa.Column("catch_up", sa.String(length=8), nullable=False),
        sa.Column("allow_overlap", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_package")),
        sa.UniqueConstraint("name", name=op.f("uq_jqm_package_name")),
    )
    op.create_table(
        "jqm_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("on_error", sa.String(length=24), nullable=False),
        sa.Column("stop_package_after", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_run")),
    )
    with op.batch_alter_table("jqm_run", schema=None) as batch_op:
        batch_op.create_index("ix_jqm_run_package_status", ["package_name", "status"], unique=False)

    op.create_table(
        "jqm_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["jqm_package.id"],
            name=op.f("fk_jqm_entry_package_id_jqm_package"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_entry")),
    )
    with op.batch_alter_table("jqm_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jqm_entry_package_id"), ["package_id"], unique=False)

    op.create_table(
        "jqm_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("package_name", sa.String(length=100), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=255), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("run_order", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column("retry_policy", sa.JSON(), nullable=False),
        sa.Column("soft_time_limit_s", sa.Float(), nullable=True),
        sa.Column("time_limit_s", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("current_delay_s", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("celery_task_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["jqm_run.id"], name=op.f("fk_jqm_job_run_id_jqm_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_job")),
    )
    with op.batch_alter_table("jqm_job", schema=None) as batch_op:
        batch_op.create_index("ix_jqm_job_run_status", ["run_id", "status"], unique=False)
        batch_op.create_index("ix_jqm_job_status_queue", ["status", "queue"], unique=False)

    op.create_table(
        "jqm_recurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["jqm_package.id"],
            name=op.f("fk_jqm_recurrence_package_id_jqm_package"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jqm_recurrence")),
    )
    with op.batch_alter_table("jqm_recurrence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jqm_recurrence_next_fire_at"), ["next_fire_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_jqm_recurrence_package_id"), ["package_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jqm_recurrence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jqm_recurrence_package_id"))
        batch_op.drop_index(batch_op.f("ix_jqm_recurrence_next_fire_at"))

    op.drop_table("jqm_recurrence")
    with op.batch_alter_table("jqm_job", schema=None) as batch_op:
        batch_op.drop_index("ix_jqm_job_status_queue")
        batch_op.drop_index("ix_jqm_job_run_status")

    op.drop_table("jqm_job")
    with op.batch_alter_table("jqm_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jqm_entry_package_id"))

    op.drop_table("jqm_entry")
    with op.batch_alter_table("jqm_run", schema=None) as batch_op:
        batch_op.drop_index("ix_jqm_run_package_status")

    op.drop_table("jqm_run")
    op.drop_table("jqm_package")
    with op.batch_alter_table("jqm_log_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_jqm_log_entry_status_id")
        batch_op.drop_index(batch_op.f("ix_jqm_log_entry_run_id"))
        batch_op.drop_index("ix_jqm_log_entry_package_id")
        batch_op.drop_index(batch_op.f("ix_jqm_log_entry_job_id"))

    op.drop_table("jqm_log_entry")
