"""The read that follows the context lock: the dedup record and the values that ride along
with it (the knowledge version, the user's language and history window), as one SELECT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Select, Table, bindparam, func, literal_column, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.util import ClauseAdapter

from wxbot.dialog.context import seen


def seen_and_extras(extra_columns: Sequence[Any], mysql: bool) -> Select[Any]:
    """The dedup record (``bindparam("dedup_key")``) and the extras in one SELECT that
    always returns one row: a one-row derived table with the record LEFT JOINed to it.

    An extra that looks up one row by its table's primary key (the usual case: the
    knowledge version, the user's language, their window) becomes a LEFT JOIN of that
    table, one per table and key however many of its columns are read; any other extra
    stays a scalar subquery. MariaDB spent more on planning four subqueries than on the
    rest of the message's reads. On MySQL the values come packed in one JSON array.
    """
    record = seen.alias("s")
    source: Any = (
        select(literal_column("1").label("one"))
        .subquery("o")
        .outerjoin(record, record.c.dedup_key == bindparam("dedup_key"))
    )
    values: list[Any] = [record.c.reply, record.c.status, record.c.attempts]
    joined: dict[tuple[str, str], Any] = {}  # (table, key condition) -> its alias
    for column in extra_columns:
        lookup = _primary_key_lookup(column)
        if lookup is None:
            values.append(column.element)
            continue
        table, condition, value = lookup
        key = (table.name, str(condition))
        alias = joined.get(key)
        if alias is None:
            alias = joined[key] = table.alias(f"x{len(joined)}")
            source = source.outerjoin(alias, ClauseAdapter(alias).traverse(condition))
        values.append(ClauseAdapter(alias).traverse(value))
    if mysql:
        return select(func.json_array(*values)).select_from(source)
    return select(*values).select_from(source)


def _primary_key_lookup(column: Any) -> tuple[Table, Any, Any] | None:
    """(table, condition, value) when ``column`` is a labelled scalar subquery
    ``SELECT value FROM table WHERE <primary key> = <bind>``, else None."""
    inner = getattr(getattr(column, "element", None), "element", None)
    if not isinstance(inner, Select):
        return None
    froms = inner.get_final_froms()
    where = inner.whereclause
    selected = inner.selected_columns
    if len(froms) != 1 or not isinstance(froms[0], Table) or where is None or len(selected) != 1:
        return None
    table = froms[0]
    keys = list(table.primary_key.columns)
    left = getattr(where, "left", None)
    right = getattr(where, "right", None)
    if (
        len(keys) != 1
        or getattr(where, "operator", None) is not operators.eq
        or left is None
        or not left.compare(keys[0])
        or not isinstance(right, BindParameter)
    ):
        return None
    return table, where, selected[0]
