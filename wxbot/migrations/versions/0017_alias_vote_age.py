"""Did-you-mean votes indexed by when they were cast: they keep the user's OpenID with their
wording, and votes older than WXBOT_MEMORY_DAYS are now deleted by the clean-ups (before,
a vote for a wording nobody else picked stayed for ever). The index makes finding them a
range read instead of a scan of every vote, one message in 500.

Revision ID: 0017_alias_vote_age
Revises: 0016_unanswered_order
"""

from alembic import op

from wxbot.migrations import resumable

revision = "0017_alias_vote_age"
down_revision = "0016_unanswered_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    resumable.create_index("ix_kb_alias_votes_created_at", "kb_alias_votes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_kb_alias_votes_created_at", table_name="kb_alias_votes")
