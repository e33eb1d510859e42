"""The per-process memo of knowledge lookups: a result is reused only for the same question,
suggestion count and language, under the same knowledge version and thresholds; never with
semantic retrieval (whose result depends on a service answering in time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.helpers import content, say
from wxbot.dialog.answer_cache import cache_lookups
from wxbot.qa import writer


@dataclass
class FakeKb:
    version: int = 1
    confident: float = 0.5
    suggest: float = 0.3
    semantic: Any = None
    calls: list[tuple[str, int, str | None]] = field(default_factory=list)

    def lookup(self, text: str, suggestions: int = 3, language: str | None = None) -> object:
        self.calls.append((text, suggestions, language))
        return object()


def test_a_result_is_reused_only_for_the_same_arguments_version_and_thresholds() -> None:
    kb = cache_lookups(FakeKb())
    first = kb.lookup("营业时间", language="zh")
    assert kb.lookup("营业时间", language="zh") is first
    assert kb.lookup(" 营业时间 ", language="zh") is first  # the text as matched
    kb.lookup("营业时间", language="en")
    kb.lookup("营业时间", suggestions=5, language="zh")
    kb.version = 2  # the knowledge changed
    kb.lookup("营业时间", language="zh")
    kb.confident = 0.6  # a threshold tuned at run time
    kb.lookup("营业时间", language="zh")
    assert len(kb.calls) == 5


def test_semantic_retrieval_is_not_cached() -> None:
    kb = cache_lookups(FakeKb(semantic=object()))
    kb.lookup("营业时间")
    kb.lookup("营业时间")
    assert len(kb.calls) == 2


def test_users_of_two_languages_get_their_own_answer(app, bot) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        writer.create_entry(
            conn, ["VIP 会员价格"], "VIP 会员每月 15 元。", now=1, source="api", language="zh"
        )
        writer.create_entry(
            conn, ["VIP price"], "VIP costs $2 a month.", now=1, source="api", language="en"
        )
    say(bot, "o_en", "language en")
    say(bot, "o_zh", "语言 zh")
    assert content(say(bot, "o_zh", "VIP")) == "VIP 会员每月 15 元。"
    assert content(say(bot, "o_en", "VIP")) == "VIP costs $2 a month."
    assert content(say(bot, "o_zh", "VIP")) == "VIP 会员每月 15 元。"


def test_the_key_names_every_tunable_the_real_knowledge_base_has() -> None:
    """A renamed or added decision setting must join the key, or run-time changes to it
    would be answered from stale results."""
    from wxbot.dialog.answer_cache import THRESHOLDS
    from wxbot.qa import KnowledgeBase

    kb = KnowledgeBase()
    missing = [name for name in THRESHOLDS if not hasattr(kb, name)]
    assert missing == []
