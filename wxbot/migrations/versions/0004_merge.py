"""Join the knowledge-base and services branches into one head (no schema change).

Revision ID: 0004_merge
Revises: 0002_knowledge, 0003_services
"""

revision = "0004_merge"
down_revision = ("0002_knowledge", "0003_services")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
