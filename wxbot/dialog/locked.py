"""The statements of one message's transaction, on the hot path, in as few round trips as
the database allows.

Known user:  1. lock the context row, *then* read the dedup record and the extra values
                (the knowledge version) — one round trip on MySQL (a multi-statement query);
             2. insert the dedup record and save the context — one round trip;
             3. COMMIT.
New user:    the lock finds no row: one more round trip creates the row (an upsert that
             takes the row lock, waiting for a concurrent creator to commit) and reads the
             same values again, plus the number of stored contexts (for the session cap).

Everything the decision depends on is read by a statement that runs *after* the lock is
held, so a delivery that waited for the lock sees what the lock holder committed (issue 13:
a retry racing a new user's first message). Statements are plain SQL on the DBAPI cursor:
building SQLAlchemy constructs per message cost more CPU than the database spent answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, select

from wxbot.db import committed_in_sql, is_mysql, raw_cursor
from wxbot.dialog.context import (
    ContextRow,
    SeenRecord,
    contexts,
    fresh_context,
    row_to_context,
    saved_values,
    seen,
)


class AlreadyProcessed(Exception):
    """Inserting the dedup record hit an existing one: another delivery of this message
    committed first. Never an error: the caller answers from that record."""


@dataclass
class Locked:
    ctx: ContextRow | None  # None: no context row (and none was created)
    seen: SeenRecord | None  # read after the lock was held
    stored_contexts: int | None = None  # counted after creating a context (new users only)


class MessageStatements:
    """SQL for one dialect, built once. ``extra_columns``: labelled scalar subqueries (e.g.
    the knowledge version) read after the lock; their values land in ``ContextRow.extras``."""

    def __init__(self, engine: Engine, extra_columns: Sequence[Any] = ()) -> None:
        dialect = engine.dialect
        self.mysql = is_mysql(engine)
        quote = dialect.identifier_preparer.quote
        mark = "%s" if self.mysql else "?"
        self.columns = [c.name for c in contexts.columns]
        cols = ", ".join(quote(c) for c in self.columns)
        ctx_table, seen_table = quote(contexts.name), quote(seen.name)
        openid = quote("openid")
        lock_suffix = " FOR UPDATE" if self.mysql else ""  # SQLite: BEGIN IMMEDIATE locked all
        self._select_context = (
            f"SELECT {cols} FROM {ctx_table} WHERE {openid} = {mark}{lock_suffix}"
        )
        # The dedup record and the extras in one statement (one result set to parse):
        # a one-row derived table, the record LEFT JOINed to it, the extras as columns.
        extras = ""
        if extra_columns:
            compiled = str(
                select(*extra_columns).compile(
                    dialect=dialect, compile_kwargs={"literal_binds": True}
                )
            )
            extras = ", " + compiled.replace("\n", " ").removeprefix("SELECT ")
        self._extra_names = [c.name for c in extra_columns]
        self._select_seen = (
            f"SELECT s.{quote('reply')}, s.{quote('status')}, s.{quote('attempts')}{extras}"
            f" FROM (SELECT 1 AS one) AS o LEFT JOIN {seen_table} AS s"
            f" ON s.{quote('dedup_key')} = {mark}"
        )
        self._count = f"SELECT COUNT(*) FROM {ctx_table}"
        marks = ", ".join([mark] * len(self.columns))
        if self.mysql:  # the no-op update takes the row lock when another creator won
            self._create = (
                f"INSERT INTO {ctx_table} ({cols}) VALUES ({marks})"
                f" ON DUPLICATE KEY UPDATE {openid} = {openid}"
            )
        else:
            self._create = (
                f"INSERT INTO {ctx_table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            )
        seen_cols = ["dedup_key", "openid", "reply", "status", "attempts", "created_at"]
        self._record = (
            f"INSERT INTO {seen_table} ({', '.join(quote(c) for c in seen_cols)})"
            f" VALUES ({', '.join([mark] * len(seen_cols))})"
        )
        self._saved = list(saved_values(ContextRow(""), 0.0, 0.0))
        self._save = (
            f"UPDATE {ctx_table} SET "
            + ", ".join(f"{quote(c)} = {mark}" for c in self._saved)
            + f" WHERE {openid} = {mark}"
        )

    # -- reads ---------------------------------------------------------------------------

    def lock(self, conn: Connection, openid: str, dedup_key: str) -> Locked:
        """Lock the user's context row, then read the dedup record and the extras."""
        reads = [(self._select_context, (openid,)), (self._select_seen, (dedup_key,))]
        return self._locked(conn, reads)

    def create_and_lock(
        self, conn: Connection, openid: str, dedup_key: str, now: float, ttl: float, count: bool
    ) -> Locked:
        """Create the user's context row (or wait for a concurrent creator and lock theirs),
        then read as ``lock`` does; ``count``: also count the stored contexts."""
        fresh = fresh_context(openid, now, ttl)
        statements = [
            (self._create, tuple(fresh[c] for c in self.columns)),
            (self._select_context, (openid,)),
            (self._select_seen, (dedup_key,)),
        ]
        if count:
            statements.append((self._count, ()))
        return self._locked(conn, statements, counted=count)

    def _locked(
        self, conn: Connection, statements: list[tuple[str, tuple[Any, ...]]], counted: bool = False
    ) -> Locked:
        row_sets = [r for r in self._run(conn, statements) if r is not None]
        ctx_rows, seen_rows, *rest = row_sets
        reply, status, attempts, *extra_values = seen_rows[1][0]
        extras = dict(zip(self._extra_names, extra_values, strict=True))
        stored = rest[0][1][0][0] if counted else None
        record = SeenRecord(reply, status, attempts) if status is not None else None
        if not ctx_rows[1]:
            return Locked(None, record, stored)
        ctx = row_to_context(SimpleNamespace(**dict(zip(ctx_rows[0], ctx_rows[1][0], strict=True))))
        ctx.extras = extras
        return Locked(ctx, record, stored)

    def _run(
        self, conn: Connection, statements: list[tuple[str, tuple[Any, ...]]]
    ) -> list[tuple[list[str], list[tuple[Any, ...]]] | None]:
        """Run the statements in order (MySQL: one round trip); each SELECT's (names, rows),
        None for the others."""
        results: list[tuple[list[str], list[tuple[Any, ...]]] | None] = []
        with raw_cursor(conn) as cursor:
            if self.mysql:
                sql = ";\n".join(s for s, _ in statements)
                cursor.execute(sql, tuple(p for _, params in statements for p in params))
                while True:
                    results.append(_fetched(cursor))
                    if not cursor.nextset():
                        break
            else:
                for sql, params in statements:
                    cursor.execute(sql, params)
                    results.append(_fetched(cursor))
        return results

    # -- writes --------------------------------------------------------------------------

    def finish_and_commit(
        self,
        conn: Connection,
        ctx: ContextRow,
        now: float,
        ttl: float,
        dedup_key: str,
        reply_json: str | None,
        status: str,
    ) -> None:
        """Insert the dedup record, save the context and commit: the last statements of the
        transaction (MySQL: one round trip, COMMIT included, so the transaction's own commit
        has nothing left to send). The insert goes first: if another delivery recorded this
        message meanwhile, nothing is saved and AlreadyProcessed is raised (the caller rolls
        back and answers from that record). SQLite: the caller's commit commits."""
        ctx.version += 1
        record = (dedup_key, ctx.openid, reply_json, status, 1, now)
        values = saved_values(ctx, now, ttl)
        save = (*[values[c] for c in self._saved], ctx.openid)
        try:
            if self.mysql:
                self._run(conn, [(self._record, record), (self._save, save), ("COMMIT", ())])
                committed_in_sql(conn)
            else:
                self._run(conn, [(self._record, record)])
                self._run(conn, [(self._save, save)])
        except Exception as exc:
            if is_duplicate_key(exc):
                raise AlreadyProcessed(dedup_key) from exc
            raise


def is_duplicate_key(exc: BaseException) -> bool:
    """A duplicate-key error (MySQL 1062, SQLite's UNIQUE constraint), wrapped or not."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if args and args[0] == 1062:
        return True
    return "UNIQUE constraint failed" in str(orig)


def _fetched(cursor: Any) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    if cursor.description is None:  # an INSERT / UPDATE
        return None
    return [d[0] for d in cursor.description], list(cursor.fetchall())
