"""The kb_* models and migration 0002_knowledge describe the same tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from wxbot.models import Base
from wxbot.qa import models  # noqa: F401 - the kb_* tables are on Base


def _kb_table(diff: object) -> str:
    # diff entries are tuples like ("add_index", Index) or lists of column-level tuples
    first = diff[0] if isinstance(diff, list) else diff
    for item in first[1:] if isinstance(first, tuple) else ():
        table = getattr(item, "table", None) or item
        name = getattr(table, "name", None) or (item if isinstance(item, str) else "")
        if isinstance(name, str) and name.startswith("kb_"):
            return name
    return ""


def test_models_match_the_migration(app) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if _kb_table(d)] == []
