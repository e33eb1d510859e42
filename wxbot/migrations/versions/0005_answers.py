"""Answers (issue 9): entry language, question origin, synonyms (seeded with the starter
list), did-you-mean votes, embeddings.

Revision ID: 0005_answers
Revises: 0004_merge
"""

import time
from importlib import resources

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0005_answers"
down_revision = "0004_merge"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def _starter_groups() -> list[str]:
    """The starter list shipped with the package (knowledge/synonyms.txt), as stored rows.

    Read here rather than through wxbot.qa so this revision keeps working whatever the
    application code becomes; the words are stored as written (lower-cased), and the
    knowledge base normalises them when it loads them.
    """
    text = (
        resources.files("wxbot.qa")
        .joinpath("data/starter_synonyms.txt")
        .read_text(encoding="utf-8")
    )
    groups = []
    for line in text.splitlines():
        words = list(dict.fromkeys(w.lower() for w in line.split()))
        if line.startswith("#") or len(words) < 2:
            continue
        groups.append("|".join(words))
    return groups


def upgrade() -> None:
    resumable.add_column("kb_entries", sa.Column("language", sa.String(8), nullable=True))
    resumable.add_column(
        "kb_questions", sa.Column("origin", sa.String(16), nullable=False, server_default="")
    )
    synonyms = resumable.create_table(
        "kb_synonyms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("words", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "kb_alias_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("qkey", sa.String(40), nullable=False),
        sa.Column(
            "entry_id",
            sa.Integer,
            sa.ForeignKey("kb_entries.id", ondelete="CASCADE", name="fk_kb_alias_votes_entry"),
            nullable=False,
        ),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_kb_alias_votes_entry_id", "kb_alias_votes", ["entry_id"])
    resumable.create_index("ix_kb_alias_votes_openid", "kb_alias_votes", ["openid"])
    resumable.create_index(
        "uq_kb_alias_votes_pick", "kb_alias_votes", ["qkey", "entry_id", "openid"], unique=True
    )
    resumable.create_table(
        "kb_embeddings",
        sa.Column("qkey", sa.String(40), primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        **MYSQL,
    )
    now = time.time()
    op.bulk_insert(
        synonyms,
        [
            {"words": words, "source": "starter", "created_at": now, "updated_at": now}
            for words in _starter_groups()
        ],
    )
    # Every process re-indexes: the starter synonyms change how questions are indexed.
    op.execute("UPDATE kb_meta SET version = version + 1 WHERE id = 1")
    op.execute(
        sa.text(
            "INSERT INTO kb_changes (version, entry_id, changed_at) "
            "SELECT version, NULL, :now FROM kb_meta WHERE id = 1"
        ).bindparams(now=now)
    )


def downgrade() -> None:
    op.drop_table("kb_embeddings")
    op.drop_table("kb_alias_votes")
    op.drop_table("kb_synonyms")
    # Not batch mode: on SQLite it copies kb_entries to a new table and drops the old one,
    # and with foreign keys on (make_engine) that DROP deleted every question and vote by
    # their ON DELETE CASCADE. SQLite 3.35+ drops a column in place; older ones cannot, and
    # are refused rather than losing the questions.
    if op.get_bind().dialect.name == "sqlite":
        import sqlite3

        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(
                f"downgrading 0005_answers needs SQLite 3.35 or later (this is"
                f" {sqlite3.sqlite_version}): it would delete every question"
            )
    op.drop_column("kb_questions", "origin")
    op.drop_column("kb_entries", "language")
