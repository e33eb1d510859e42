"""The LLM family's models and migration 0006_llm describe the same tables."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wxbot.llm import models  # noqa: F401 - the memories / llm_* tables are on Base
from wxbot.models import Base

OURS = {"memories", "llm_usage", "llm_answers"}


def _table(diff: Any) -> str:
    first = diff[0] if isinstance(diff, list) else diff
    op, target = first[0], first[1]
    if op in ("add_table", "remove_table"):
        return target.name
    if op in ("add_index", "remove_index"):
        return target.table.name
    return first[2] if isinstance(first[2], str) else ""  # column ops: (op, schema, table, ...)


def test_models_match_the_migration(app) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if _table(d) in OURS] == []
    assert set(Base.metadata.tables) >= OURS
