"""Figures: daily message counts, the most answered entries, flow funnels, LLM usage, and
GET /admin/api/stats."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import Connection

from wxbot.admin.ops.base import AdminBase
from wxbot.dialog import context
from wxbot.flows import stats as flow_stats
from wxbot.llm import memory, usage
from wxbot.qa import store
from wxbot.stats import read_counts


class FigureOps(AdminBase):
    def daily_counts(self, first: date, last: date) -> dict[str, Counter[str]]:
        """Day -> what happened that day (messages, answered, ...), this process's unwritten
        counts included; other processes' reach the database within half a minute."""
        self.bot.stats.flush()
        return self.read(lambda conn: read_counts(conn, first, last))

    def top_entries(self, limit: int) -> list[tuple[int, str, int]]:
        flush = getattr(self.bot.deps.kb, "flush_hits_now", None)
        if flush is not None:
            flush()
        return self.read(lambda conn: store.top_entries(conn, limit))

    def loaded_flows(self) -> list[Any]:
        """The business flows this process runs (wxbot.flows.spec.Flow), as loaded."""
        return list(self.flows.flows) if self.flows is not None else []

    def flow_funnels(self) -> dict[str, Any]:
        """Flow name -> entered, completed, cancelled, handed off, failed, timed out, in
        progress, and per step (with the median failed attempts)."""
        now = self.now()
        return self.read(lambda conn: self._funnels(conn, now))

    def llm_usage(self) -> dict[str, Any]:
        """Whether the LLM answers, with which model, and everyone's calls, tokens and
        estimated cost, today and in all."""
        now = self.now()
        return self.read(lambda conn: self._llm_usage(conn, now))

    def stats(self) -> dict[str, Any]:
        """What GET /admin/api/stats answers (one connection)."""
        now = self.now()
        kb = self.bot.deps.kb

        def work(conn: Connection) -> dict[str, Any]:
            return {
                "sessions": {
                    "live": int(context.count_live(conn, now)),
                    "stored": int(context.count_contexts(conn)),
                    "users": memory.count_users(conn),
                },
                "knowledge": {
                    **store.counts(conn),
                    "loaded_here": len(kb) if kb is not None else 0,
                },
                "llm": self._llm_usage(conn, now),
                "flows": self._funnels(conn, now),
            }

        return self.read(work)

    def _funnels(self, conn: Connection, now: float) -> dict[str, Any]:
        return flow_stats.funnel(conn, self.loaded_flows(), now)

    def _llm_usage(self, conn: Connection, now: float) -> dict[str, Any]:
        settings = self.settings
        return {
            "mode": "fallback" if settings.llm_fallback else "off",
            "model": settings.llm_model,
            **usage.totals(conn, now),
        }
