"""What every admin operation stands on: the app's parts, short transactions, AdminError."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import Connection, Engine

from wxbot.config import Settings
from wxbot.db import with_retries
from wxbot.qa import writer

T = TypeVar("T")

MAX_ID = 2**63 - 1  # the largest id a database integer holds: a bigger number names nothing
MAX_PAGE = 10**9  # far past any data; bigger page offsets overflow the database's integers


def oversized_id(path_args: Mapping[str, Any] | None) -> str | None:
    """The name of the first number in a URL's path that no id can be (its query would
    overflow the driver: a 500 on SQLite), else None. The API and the console answer 404."""
    for name, value in (path_args or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            return name
    return None


class AdminError(Exception):
    """A refused admin request; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class AdminBase:
    engine: Engine
    bot: Any  # wxbot.dialog.engine.Bot
    clock: Callable[[], float]
    flows: Any = None  # wxbot.flows.runner.FlowRunner: the loaded flows and their funnels

    @classmethod
    def of(cls, app: Flask) -> Any:  # the subclass (Admin) it is called on
        ext = app.extensions
        return cls(
            ext["wxbot.engine"], ext["wxbot.bot"], ext["wxbot.clock"], ext.get("wxbot.flows")
        )

    @property
    def settings(self) -> Settings:
        return self.bot.settings

    def now(self) -> float:
        return self.clock()

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction (retried on a MySQL deadlock); a refused
        knowledge write becomes an AdminError."""

        def run() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        try:
            return with_retries(run)
        except writer.KnowledgeError as exc:
            raise AdminError(exc.status, exc.reason) from None

    def read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)
