"""Seen records indexed by (status, created_at) instead of created_at alone: the slow work
whose worker died (records still pending or late minutes after they were made) is found
by a short range of the index instead of a scan of the day's records, so its users can be
told by push (wxbot/dialog/lost_work.py). Pruning by age reads the range of each status.
Replacing the index, not adding one, keeps the message path's INSERT as cheap as it was.

Revision ID: 0015_seen_status_index
Revises: 0014_count_batches
"""

from alembic import op

from wxbot.migrations import resumable

revision = "0015_seen_status_index"
down_revision = "0014_count_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    resumable.create_index(
        "ix_seen_messages_status_created_at", "seen_messages", ["status", "created_at"]
    )
    resumable.drop_index("ix_seen_messages_created_at", "seen_messages")


def downgrade() -> None:
    op.create_index("ix_seen_messages_created_at", "seen_messages", ["created_at"])
    op.drop_index("ix_seen_messages_status_created_at", table_name="seen_messages")
