"""LLM answers: per-user memory (durable history window, window setting, usage and rate
counters), global usage per day, and the answers kept for promotion into the knowledge base.

Revision ID: 0006_llm
Revises: 0004_merge
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0006_llm"
down_revision = "0004_merge"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "memories",
        sa.Column("openid", sa.String(64), primary_key=True),
        sa.Column("history", sa.Text, nullable=False),
        sa.Column("history_rounds", sa.Integer, nullable=True),
        sa.Column("recent_calls", sa.Text, nullable=False),
        sa.Column("day", sa.Integer, nullable=False, server_default="0"),
        sa.Column("day_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost", sa.Double, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "llm_usage",
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost", sa.Double, nullable=False, server_default="0"),
        **MYSQL,
    )
    resumable.create_table(
        "llm_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("entry_id", sa.Integer, nullable=True),
        **MYSQL,
    )
    resumable.create_index("ix_llm_answers_openid", "llm_answers", ["openid"])
    resumable.create_index("ix_llm_answers_created_at", "llm_answers", ["created_at"])


def downgrade() -> None:
    op.drop_table("llm_answers")
    op.drop_table("llm_usage")
    op.drop_table("memories")
