"""SMS limits shared by every process: codes per number and per user per day, and when the
last two went (wxbot.flows.phone). Failing three codes no longer resets the resend clock (it
lived in the dropped sms_codes row), and nobody can text one number without end.

Revision ID: 0013_sms_quotas
Revises: 0012_long_text
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0013_sms_quotas"
down_revision = "0012_long_text"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "sms_quotas",
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.Double, nullable=False),
        sa.Column("earlier_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_index("ix_sms_quotas_day", "sms_quotas", ["day"])  # finds rows to prune


def downgrade() -> None:
    op.drop_index("ix_sms_quotas_day", table_name="sms_quotas")
    op.drop_table("sms_quotas")
