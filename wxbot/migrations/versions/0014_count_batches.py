"""The daily counters' written batches: a flush whose COMMIT failed in transit (the
connection dropped after the server committed) is retried under the same batch id, and the
id already stored makes the retry add nothing. Before, its counts were added twice.

Revision ID: 0014_count_batches
Revises: 0013_sms_quotas
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0014_count_batches"
down_revision = "0013_sms_quotas"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "daily_count_batches",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("written_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index(
        "ix_daily_count_batches_written_at", "daily_count_batches", ["written_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_daily_count_batches_written_at", table_name="daily_count_batches")
    op.drop_table("daily_count_batches")
