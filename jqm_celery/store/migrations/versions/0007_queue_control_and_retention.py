"""paused queues, deferred jobs, the queues each worker consumes, run retention

Revision ID: 0007
Revises: 0006

A paused queue's jobs are refused where a worker claims them; a job whose message was refused is marked
``deferred_at`` and sent again when its queue is resumed (a partial index finds them). A worker's
heartbeat also records the queues it consumes, for the queues page. Run retention deletes finished runs
by ``finished_at`` (an index), and ``jqm_chore`` records when a daily chore of the workers last ran, so
one worker of many runs it. The jobs page filters by package on ``(package_name, id)``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DEFERRED = sa.text("deferred_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("jqm_queue", sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jqm_job", sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_jqm_job_queue_deferred",
        "jqm_job",
        ["queue"],
        postgresql_where=_DEFERRED,
        sqlite_where=_DEFERRED,
    )
    op.add_column("jqm_worker", sa.Column("queues", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_jqm_run_finished_at", "jqm_run", ["finished_at"])
    op.create_index("ix_jqm_job_package_id", "jqm_job", ["package_name", "id"])
    op.create_table(
        "jqm_chore",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jqm_chore")),
    )


def downgrade() -> None:
    op.drop_table("jqm_chore")
    op.drop_index("ix_jqm_run_finished_at", table_name="jqm_run")
    op.drop_index("ix_jqm_job_package_id", table_name="jqm_job")
    with op.batch_alter_table("jqm_worker") as batch:
        batch.drop_column("queues")
    op.drop_index("ix_jqm_job_queue_deferred", table_name="jqm_job")
    with op.batch_alter_table("jqm_job") as batch:
        batch.drop_column("deferred_at")
    with op.batch_alter_table("jqm_queue") as batch:
        batch.drop_column("paused")
