"""Knowledge base: entries, their questions, unanswered questions, version row and change log.

Revision ID: 0002_knowledge
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0002_knowledge"
down_revision = "0001_core"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "kb_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.String(255), nullable=True),
        sa.Column("taught_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_hit_at", sa.Double, nullable=True),
        **MYSQL,
    )
    # unsubscribe clears taught_by: without an index that would scan every entry
    resumable.create_index("ix_kb_entries_taught_by", "kb_entries", ["taught_by"])
    resumable.create_table(
        "kb_questions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("kb_entries.id", ondelete="CASCADE", name="fk_kb_questions_entry"),
            nullable=False,
        ),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("qkey", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        **MYSQL,
    )
    resumable.create_index("ix_kb_questions_entry_id", "kb_questions", ["entry_id"])
    resumable.create_index("uq_kb_questions_qkey", "kb_questions", ["qkey"], unique=True)
    resumable.create_table(
        "kb_unanswered",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("qkey", sa.String(40), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("first_asked_at", sa.Double, nullable=False),
        sa.Column("last_asked_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("uq_kb_unanswered_qkey", "kb_unanswered", ["qkey"], unique=True)
    resumable.create_index("ix_kb_unanswered_count", "kb_unanswered", ["count"])
    resumable.create_table(
        "kb_meta",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Double, nullable=False, server_default="0"),
        **MYSQL,
    )
    meta = sa.table(
        "kb_meta",
        sa.column("id", sa.Integer),
        sa.column("version", sa.BigInteger),
        sa.column("updated_at", sa.Double),
    )
    # MySQL committed the row with the next CREATE TABLE: a run that died after it left it
    if op.get_bind().execute(sa.select(meta.c.id).where(meta.c.id == 1)).first() is None:
        op.bulk_insert(meta, [{"id": 1, "version": 0, "updated_at": 0.0}])
    resumable.create_table(
        "kb_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("entry_id", sa.Integer, nullable=True),
        sa.Column("changed_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_kb_changes_version", "kb_changes", ["version"])


def downgrade() -> None:
    op.drop_table("kb_changes")
    op.drop_table("kb_meta")
    op.drop_table("kb_unanswered")
    op.drop_table("kb_questions")
    op.drop_table("kb_entries")
