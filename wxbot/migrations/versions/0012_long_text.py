"""Conversation columns that outgrow MySQL's TEXT (64 KB) become MEDIUMTEXT: a context's
history and slots, and the stored memory's history. A 50-round window of long messages is
over 100 KB; the save failed and every later message of that user got the apology. SQLite
and PostgreSQL have no such limit: nothing changes there.

Revision ID: 0012_long_text
Revises: 0011_answers2
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012_long_text"
down_revision = "0011_answers2"
branch_labels = None
depends_on = None

COLUMNS = [("contexts", "slots"), ("contexts", "history"), ("memories", "history")]


def upgrade() -> None:
    _retype(to=mysql.MEDIUMTEXT())


TEXT_BYTES = 65535  # what MySQL's TEXT holds


def downgrade() -> None:
    # Refuse before altering anything if a value would not fit: strict MySQL stops halfway
    # (one column retyped, the next not), and a server without strict mode cuts the
    # histories short without a word.
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        for table, column in COLUMNS:
            longest = bind.execute(sa.text(f"SELECT MAX(LENGTH({column})) FROM {table}")).scalar()
            if (longest or 0) > TEXT_BYTES:
                raise RuntimeError(
                    f"cannot downgrade 0012_long_text: {table}.{column} holds {longest} bytes,"
                    f" more than TEXT's {TEXT_BYTES}; shorten or delete those rows first"
                )
    _retype(to=sa.Text())


def _retype(to: sa.types.TypeEngine) -> None:
    """One ALTER per table: MariaDB/MySQL cannot change a TEXT column's type in place, so
    each ALTER copies the whole table while writes to it wait (about 6 s per 200k contexts).
    One column at a time, contexts went through that twice. Re-running it is harmless (a
    column already of the type stays as it is), so a run that died half-way resumes."""
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    kind = to.compile(dialect=bind.dialect)
    for table in dict.fromkeys(table for table, _ in COLUMNS):
        columns = [column for name, column in COLUMNS if name == table]
        changes = ", ".join(f"MODIFY `{column}` {kind} NOT NULL" for column in columns)
        op.execute(f"ALTER TABLE `{table}` {changes}")
