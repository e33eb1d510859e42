"""Conversation contexts and seen-message (dedup) records.

Revision ID: 0001_core
Revises:
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "contexts",
        sa.Column("openid", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False, server_default="WAIT_QUERY"),
        sa.Column("slots", sa.Text, nullable=False),
        sa.Column("history", sa.Text, nullable=False),
        sa.Column("rounds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        **MYSQL,
    )
    resumable.create_index("ix_contexts_expires_at", "contexts", ["expires_at"])
    resumable.create_table(
        "seen_messages",
        sa.Column("dedup_key", sa.String(191), primary_key=True),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="done"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_seen_messages_created_at", "seen_messages", ["created_at"])
    resumable.create_index("ix_seen_messages_openid", "seen_messages", ["openid"])


def downgrade() -> None:
    op.drop_table("seen_messages")
    op.drop_table("contexts")
