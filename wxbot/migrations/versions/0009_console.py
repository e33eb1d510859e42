"""The web console's tables and the daily counters its dashboard reads.

Revision ID: 0009_console
Revises: 0004_merge
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from wxbot.migrations import resumable

revision = "0009_console"
down_revision = "0004_merge"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "daily_counts",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    resumable.create_table(
        "console_login_failures",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "console_imports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("fmt", sa.String(8), nullable=False),
        sa.Column(
            "data",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("skip_bad", sa.Boolean, nullable=False),
        sa.Column("done_rows", sa.Integer, nullable=False),
        sa.Column("total_rows", sa.Integer, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_console_imports_created_at", "console_imports", ["created_at"])


def downgrade() -> None:
    op.drop_table("console_imports")
    op.drop_table("console_login_failures")
    op.drop_table("console_sessions")
    op.drop_table("daily_counts")
