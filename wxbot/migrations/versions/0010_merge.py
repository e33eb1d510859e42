"""Join the answers, LLM, flows and console branches into one head (no schema change).

Revision ID: 0010_merge
Revises: 0005_answers, 0006_llm, 0007_flows, 0009_console
"""

revision = "0010_merge"
down_revision = ("0005_answers", "0006_llm", "0007_flows", "0009_console")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
