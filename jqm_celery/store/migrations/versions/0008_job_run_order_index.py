"""a run's jobs by run order

Revision ID: 0008
Revises: 0007

Sending the next part of a long run reads the jobs after a run order (``Store.remaining_plan``), and moving
a run on checks the unsettled jobs up to one: ``(run_id, run_order)`` makes both a range of the index
instead of a read of all the run's jobs (a package of 5,000 entries is sent in about 50 parts).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jqm_job_run_order", "jqm_job", ["run_id", "run_order"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jqm_job_run_order", table_name="jqm_job")
