"""Migration steps that a second run finishes instead of failing on.

MariaDB/MySQL commit every DDL statement on its own, and Alembic records a revision only
after its last one: a process killed inside a migration (OOM, a deploy's deadline, Ctrl-C)
left the tables or indexes it had made while the version still said the revision before,
and every later ``wxbot init-db`` died on "Table 'sms_quotas' already exists" or "Duplicate
key name": the operator had to find and drop what the dead run had made. With these steps
the next run skips what is already there and does the rest.

A table or index is taken as already made only if it has the shape the step would give it
(the same columns; for an index the same columns in the same order and uniqueness);
anything else of that name is left to the database to refuse, in one line, as before. On
SQLite a whole upgrade is one transaction (wxbot/migrations/env.py), so nothing is ever
half-made there and these steps do exactly what Alembic's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


def _inspector() -> Any:
    return sa.inspect(op.get_bind())  # a new one each time: nothing cached across steps


def _column_names(table: str) -> set[str] | None:
    schema = _inspector()
    if not schema.has_table(table):
        return None
    return {column["name"] for column in schema.get_columns(table)}


def create_table(name: str, *columns: Any, **options: Any) -> sa.Table:
    """``op.create_table``, skipped when a run that died made the table already."""
    wanted = {c.name for c in columns if isinstance(c, sa.Column)}
    if _column_names(name) != wanted:  # missing, or not ours: the database says which
        return op.create_table(name, *columns, **options)
    return sa.Table(name, sa.MetaData(), *columns, **options)


def create_index(name: str, table: str, columns: Sequence[str], unique: bool = False) -> None:
    """``op.create_index``, skipped when a run that died made the index already."""
    for index in _inspector().get_indexes(table):
        made = list(index["column_names"]) == list(columns) and bool(index["unique"]) == unique
        if index["name"] == name and made:
            return
    op.create_index(name, table, list(columns), unique=unique)


def drop_index(name: str, table: str) -> None:
    """``op.drop_index``, skipped when a run that died dropped the index already."""
    if any(index["name"] == name for index in _inspector().get_indexes(table)):
        op.drop_index(name, table_name=table)


def add_column(table: str, column: sa.Column) -> None:
    """``add_column`` (in batch mode, as SQLite needs), skipped when a run that died added
    the column already."""
    if column.name not in (_column_names(table) or set()):
        with op.batch_alter_table(table) as batch:
            batch.add_column(column)
