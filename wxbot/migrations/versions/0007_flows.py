"""Flows and languages: per-user reply language, funnel counters of business flows.

Revision ID: 0007_flows
Revises: 0004_merge
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0007_flows"
down_revision = "0004_merge"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "user_languages",
        sa.Column("openid", sa.String(64), primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("explicit", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "flow_stats",
        sa.Column("flow", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(16), primary_key=True),
        sa.Column("attempts", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("flow_stats")
    op.drop_table("user_languages")
