"""Long pasted texts do not grow the history or the prompt without bound: each side of an
exchange keeps at most REMEMBERED_CHARS, a prompt carries the newest exchanges that fit in
HISTORY_CHARS and at most QUESTION_CHARS of the question. Before, ten pasted 15k-character
texts made every later prompt about 150k characters (past many models' context: the
provider's 400, and the don't-know reply, until they slid out of the window), and every
message of that user wrote them all back to the context row (SQLite and MySQL)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.dialog.delivery import REMEMBERED_CHARS
from wxbot.llm.prompt import HISTORY_CHARS, QUESTION_CHARS, history_messages
from wxbot.models import Context


def _history(bot: Any, openid: str) -> list[list[Any]]:
    with bot.engine.connect() as conn:
        stored = conn.execute(select(Context.history).where(Context.openid == openid)).scalar()
    return json.loads(stored)


def test_pasted_texts_are_clipped_in_the_history_and_the_prompt(make_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(**fake_llm.settings(llm_rate=0, llm_daily_tokens=0)).extensions["wxbot.bot"]
    for i in range(10):
        pasted = f"第{i}段：" + "这是一段很长的粘贴文字。" * 1500  # 18k characters
        assert content(say(bot, "o_paste", pasted)).startswith("LLM答：")
    history = _history(bot, "o_paste")
    assert len(history) == 20  # the window is still ten exchanges
    assert all(len(text) <= REMEMBERED_CHARS + 1 for _, text in history)
    assert history[-2][1].startswith("第9段：") and history[-2][1].endswith("…")
    prompt = fake_llm.last
    question = prompt[-1]["content"]
    assert question.startswith("第9段：") and len(question) == QUESTION_CHARS + 1
    past = prompt[1:-1]
    assert past and sum(len(m["content"]) for m in past) <= HISTORY_CHARS
    assert past[-2]["content"].startswith("第8段：")  # the newest exchanges are the ones kept
    # a short question afterwards still sees the newest of them
    content(say(bot, "o_paste", "刚才说的第九段是什么意思"))
    assert any(m["content"].startswith("第9段：") for m in fake_llm.last[1:-1])


def test_a_short_history_is_sent_whole() -> None:
    history = [row for i in range(10) for row in (["user", f"问题{i}"], ["bot", f"回答{i}"])]
    messages = history_messages(history)
    assert len(messages) == 20


def test_the_budget_keeps_the_newest_exchanges_that_fit() -> None:
    exchange = lambda i: [["user", f"{i}" + "问" * 2000], ["bot", "答" * 1000]]  # noqa: E731
    history = [row for i in range(10) for row in exchange(i)]
    messages = history_messages(history)
    assert len(messages) == 2 * (HISTORY_CHARS // 3001)
    assert messages[-2]["content"].startswith("9")
    assert sum(len(m["content"]) for m in messages) <= HISTORY_CHARS
