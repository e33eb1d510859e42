"""Review findings in wxbot/llm: each test failed before its fix."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.fakellm import API_KEY, MODEL, FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.llm import fallback
from wxbot.llm.client import ChatClient, LlmError
from wxbot.llm.models import Memory

MESSAGES = [{"role": "system", "content": "你是客服"}, {"role": "user", "content": "你好"}]


def client(fake: FakeLlm) -> ChatClient:
    return ChatClient(fake.url, MODEL, API_KEY, 256, 1.0, 5.0)


def test_reasoning_cut_off_by_max_tokens_is_not_shown_to_the_user(fake_llm: FakeLlm) -> None:
    # a reasoning model that spends all of max_tokens thinking: no </think>, no answer
    fake_llm.script.append(("length", "<think>用户问的是退款。我应该先查一下政策，然后"))
    with pytest.raises(LlmError, match="empty answer"):
        client(fake_llm).complete(MESSAGES)


def test_reasoning_without_its_opening_tag_is_removed(fake_llm: FakeLlm) -> None:
    # DeepSeek-R1 (distilled) chat templates put "<think>\n" into the prompt, so vLLM and
    # Ollama serve the reasoning with only its closing tag
    fake_llm.script.append(
        ("content", "用户想知道营业时间，资料里有。\n</think>\n\n每天 10:00–22:00。")
    )
    done = client(fake_llm).complete(MESSAGES)
    assert done.text == "每天 10:00–22:00。"


@pytest.fixture
def llm_app(make_app, fake_llm: FakeLlm):  # type: ignore[no-untyped-def]
    def build(**extra: Any):  # type: ignore[no-untyped-def]
        return make_app(**fake_llm.settings(llm_rate=0, **extra))

    return build


def test_tokens_billed_for_an_unusable_answer_count_against_the_daily_cap(
    llm_app, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    # The provider reports (and bills) the tokens of an answer that was all thinking: the
    # user's daily cap and the cost must see them, or such questions are free and unlimited.
    app = llm_app(llm_daily_tokens=100, llm_price_output=8.0)
    bot = app.extensions["wxbot.bot"]
    fake_llm.script.append(("length", "<think>" + "想" * 200))
    assert content(say(bot, "o_u", "火星上有信号吗")) == DONT_KNOW
    with bot.engine.connect() as conn:
        row = conn.execute(select(Memory.__table__).where(Memory.openid == "o_u")).one()
    assert (row.calls, row.failures) == (1, 1)
    assert row.completion_tokens == 207 and row.day_tokens > 207 and row.cost > 0
    assert content(say(bot, "o_u", "量子计算机能买吗")) == fallback.DAILY_LIMIT
    assert len(fake_llm.requests) == 1
