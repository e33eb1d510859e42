"""Services: phone bindings, pending SMS codes (hashes only), the shared WeChat access_token.

Revision ID: 0003_services
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

from wxbot.migrations import resumable

revision = "0003_services"
down_revision = "0001_core"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    resumable.create_table(
        "phone_bindings",
        sa.Column("openid", sa.String(64), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("verified_at", sa.Double, nullable=False),
        **MYSQL,
    )
    resumable.create_table(
        "sms_codes",
        sa.Column("openid", sa.String(64), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("sent_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sends", sa.Integer, nullable=False, server_default="1"),
        **MYSQL,
    )
    resumable.create_table(
        "wechat_tokens",
        sa.Column("appid", sa.String(64), primary_key=True),
        sa.Column("access_token", sa.String(512), nullable=False, server_default=""),
        sa.Column("expires_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("refreshes", sa.Integer, nullable=False, server_default="0"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("wechat_tokens")
    op.drop_table("sms_codes")
    op.drop_table("phone_bindings")
