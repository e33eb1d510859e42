"""The statements of one message's transaction, on the hot path, in as few round trips as
the database allows.

Known user:  1. lock the context row, *then* read the dedup record and the extra values
                (the knowledge version, the user's language and history window) — one round
                trip on MySQL (a multi-statement query);
             2. insert the dedup record, save the context and COMMIT — one round trip.
New user:    the lock finds no row: one more round trip reads whether the user was known
             before (a context evicted after its expiry leaves their language stored),
             creates the row (an upsert that takes the row lock, waiting for a concurrent
             creator to commit; its history is the user's stored memory, read inside the
             INSERT), runs the statement that stores what the first message tells (its
             language), and reads the same values again, plus the number of stored
             contexts (for the session cap).

Everything the decision depends on is read by a statement that runs *after* the lock is
held, so a delivery that waited for the lock sees what the lock holder committed (issue 13:
a retry racing a new user's first message). Statements are plain SQL on the DBAPI cursor:
building SQLAlchemy constructs per message cost more CPU than the database spent answering.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from wxbot.db import committed_in_sql, is_duplicate_key, is_mysql, raw_cursor
from wxbot.dialog.context import (
    ContextRow,
    SeenRecord,
    contexts,
    fresh_context,
    row_to_context,
    saved_values,
    seen,
)
from wxbot.dialog.lock_reads import seen_and_extras


class AlreadyProcessed(Exception):
    """Inserting the dedup record hit an existing one: another delivery of this message
    committed first. Never an error: the caller answers from that record."""


@dataclass
class Locked:
    ctx: ContextRow | None  # None: no context row (and none was created)
    seen: SeenRecord | None  # read after the lock was held
    stored_contexts: int | None = None  # counted after creating a context (new users only)
    known: bool = False  # creating it: the user was known before (see ``known_before``)


@dataclass(frozen=True)
class _Compiled:
    """A Core construct compiled once for the dialect's positional paramstyle: its SQL, and
    how to fill its parameters from named values (``openid``...) and its own literals."""

    sql: str
    names: tuple[str, ...]
    literals: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, clause: ClauseElement, dialect: Dialect) -> _Compiled:
        compiled = clause.compile(dialect=_positional(dialect))
        names = tuple(compiled.positiontup or ())
        processors = {}
        for name in set(names):
            processor = compiled.binds[name].type.bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        literals = {n: processors.get(n, _same)(v) for n, v in compiled.params.items()}
        return cls(str(compiled).replace("\n", " "), names, literals, processors)

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            self.processors.get(n, _same)(values[n]) if n in values else self.literals[n]
            for n in self.names
        )


def _same(value: Any) -> Any:
    return value


def _positional(dialect: Dialect) -> Dialect:
    """The dialect, compiling parameters as positional marks (PyMySQL's and mysqlclient's
    default is ``%(name)s``; the statements around them use ``%s``)."""
    if dialect.positional:
        return dialect
    twin = copy.copy(dialect)
    twin.paramstyle = {"pyformat": "format", "named": "qmark"}[dialect.paramstyle]
    twin.positional = True
    return twin


class MessageStatements:
    """SQL for one dialect, built once. Parts that others own come as Core constructs whose
    parameters are named (``bindparam("openid")``):

    - ``extra_columns``: labelled scalar subqueries (the knowledge version, the user's
      language, their history window) read after the lock; their values land in
      ``ContextRow.extras``;
    - ``history``: the expression a new context's history starts from (the stored memory;
      its parameters: ``openid`` and ``now``);
    - ``on_create``: a statement run right after a new context is created, when
      ``create_and_lock`` is given values for it (storing the first message's language);
    - ``known_before``: a SELECT run before a context is created (parameter ``openid``),
      whose one row's first value says whether the user was known before: a user whose
      context was evicted is no new user for the statistics.
    """

    def __init__(
        self,
        engine: Engine,
        extra_columns: Sequence[Any] = (),
        history: ClauseElement | None = None,
        on_create: ClauseElement | None = None,
        known_before: ClauseElement | None = None,
    ) -> None:
        dialect = engine.dialect
        self.mysql = is_mysql(engine)
        quote = dialect.identifier_preparer.quote
        mark = "%s" if self.mysql else "?"
        self.columns = [c.name for c in contexts.columns]
        cols = ", ".join(quote(c) for c in self.columns)
        ctx_table, seen_table = quote(contexts.name), quote(seen.name)
        openid = quote("openid")
        lock_suffix = " FOR UPDATE" if self.mysql else ""  # SQLite: BEGIN IMMEDIATE locked all
        # MySQL: each read returns one JSON array instead of a column per value. PyMySQL
        # parses every column's description in Python, which cost more than the values.
        packed = "JSON_ARRAY({})" if self.mysql else "{}"
        self._select_context = (
            f"SELECT {packed.format(cols)} FROM {ctx_table} WHERE {openid} = {mark}{lock_suffix}"
        )
        # The dedup record and the extras in one statement (one result set to parse).
        self._extra_names = [c.name for c in extra_columns]
        self._seen_read_sql = _Compiled.of(seen_and_extras(extra_columns, self.mysql), dialect)
        self._count = f"SELECT COUNT(*) FROM {ctx_table}"
        self._history = _Compiled.of(history, dialect) if history is not None else None
        marks = ", ".join(
            self._history.sql if c == "history" and self._history else mark for c in self.columns
        )
        if self.mysql:  # the no-op update takes the row lock when another creator won
            self._create = (
                f"INSERT INTO {ctx_table} ({cols}) VALUES ({marks})"
                f" ON DUPLICATE KEY UPDATE {openid} = {openid}"
            )
        else:
            self._create = (
                f"INSERT INTO {ctx_table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            )
        self._on_create = _Compiled.of(on_create, dialect) if on_create is not None else None
        self._known = _Compiled.of(known_before, dialect) if known_before is not None else None
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
        reads = [(self._select_context, (openid,)), self._seen_read(openid, dedup_key)]
        return self._locked(conn, reads)

    def _seen_read(self, openid: str, dedup_key: str) -> tuple[str, tuple[Any, ...]]:
        compiled = self._seen_read_sql
        return compiled.sql, compiled.params({"openid": openid, "dedup_key": dedup_key})

    def create_and_lock(
        self,
        conn: Connection,
        openid: str,
        dedup_key: str,
        now: float,
        ttl: float,
        count: bool,
        on_create: Mapping[str, Any] | None = None,
    ) -> Locked:
        """Create the user's context row (or wait for a concurrent creator and lock theirs),
        then read as ``lock`` does; ``count``: also count the stored contexts; ``on_create``:
        the values of the on-create statement (None: it is not run)."""
        fresh = fresh_context(openid, now, ttl)
        values: list[Any] = []
        for c in self.columns:
            if c == "history" and self._history is not None:
                values.extend(self._history.params({"openid": openid, "now": now}))
            else:
                values.append(fresh[c])
        statements = []
        if self._known is not None:  # before the INSERT: what it stores must not count
            statements.append((self._known.sql, self._known.params({"openid": openid})))
        statements.append((self._create, tuple(values)))
        if on_create is not None and self._on_create is not None:
            statements.append((self._on_create.sql, self._on_create.params(on_create)))
        statements += [(self._select_context, (openid,)), self._seen_read(openid, dedup_key)]
        if count:
            statements.append((self._count, ()))
        return self._locked(conn, statements, counted=count, asked=self._known is not None)

    def _locked(
        self,
        conn: Connection,
        statements: list[tuple[str, tuple[Any, ...]]],
        counted: bool = False,
        asked: bool = False,
    ) -> Locked:
        row_sets = [r for r in self._run(conn, statements) if r is not None]
        known = False
        if asked:  # the known_before read came first
            known_rows, *row_sets = row_sets
            known = bool(known_rows[1] and known_rows[1][0][0])
        ctx_rows, seen_rows, *rest = row_sets
        reply, status, attempts, *extra_values = self._values(seen_rows[1][0])
        extras = dict(zip(self._extra_names, extra_values, strict=True))
        stored = rest[0][1][0][0] if counted else None
        record = SeenRecord(reply, status, attempts) if status is not None else None
        if not ctx_rows[1]:
            return Locked(None, record, stored, known)
        values = self._values(ctx_rows[1][0])
        ctx = row_to_context(SimpleNamespace(**dict(zip(self.columns, values, strict=True))))
        ctx.extras = extras
        return Locked(ctx, record, stored, known)

    def _values(self, row: tuple[Any, ...]) -> Sequence[Any]:
        """A row's values: MySQL's come packed in one JSON array (see __init__)."""
        return json.loads(row[0]) if self.mysql else row

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
        bump: bool = True,
    ) -> None:
        """Insert the dedup record, save the context and commit: the last statements of the
        transaction (MySQL: one round trip, COMMIT included, so the transaction's own commit
        has nothing left to send). The insert goes first: if another delivery recorded this
        message meanwhile, nothing is saved and AlreadyProcessed is raised (the caller rolls
        back and answers from that record). SQLite: the caller's commit commits.
        ``bump=False``: the message did not move the dialogue (see Bot._locked_step)."""
        if bump:
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


def _fetched(cursor: Any) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    if cursor.description is None:  # an INSERT / UPDATE
        return None
    return [d[0] for d in cursor.description], list(cursor.fetchall())
