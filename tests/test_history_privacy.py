"""The history (the context's window, the memories copy kept for WXBOT_MEMORY_DAYS, every LLM
prompt sent to the provider) keeps no SMS code and no whole phone, ID-card or order number:
before, a phone binding left the number and its code there verbatim (sms_codes itself keeps
only a salted hash). SQLite and MySQL."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.llm.models import Memory
from wxbot.models import Context

PHONE = "13800138000"


def test_a_phone_binding_leaves_no_code_nor_number_in_the_history(
    make_app, fake_apis, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    settings = fake_llm.settings(llm_rate=0, llm_daily_tokens=0)
    bot = make_app(**fake_apis.settings(sms_backend="webhook", **settings)).extensions["wxbot.bot"]
    say(bot, "o_u", "绑定手机")
    say(bot, "o_u", PHONE)
    code = fake_apis.sms[-1]["code"]
    assert content(say(bot, "o_u", code)).startswith("绑定成功")
    say(bot, "o_u", "火星上有什么")  # an LLM answer: the window goes to the provider and is stored
    prompt = json.dumps(fake_llm.last, ensure_ascii=False)
    with bot.engine.connect() as conn:
        live = conn.execute(select(Context.history).where(Context.openid == "o_u")).scalar_one()
        kept = conn.execute(select(Memory.history).where(Memory.openid == "o_u")).scalar_one()
    for where in (prompt, live, kept):
        assert code not in where and PHONE not in where, where


def test_identifiers_in_free_text_are_masked_on_both_sides(make_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(**fake_llm.settings(llm_rate=0, llm_daily_tokens=0)).extensions["wxbot.bot"]
    say(bot, "o_u", "我的身份证号是110101199003071234，邮箱me@example.com，火星上有什么")
    say(bot, "o_u", "火星上还有什么")
    prompt = json.dumps(fake_llm.last, ensure_ascii=False)
    with bot.engine.connect() as conn:
        live = conn.execute(select(Context.history).where(Context.openid == "o_u")).scalar_one()
    for where in (prompt, live):
        assert "110101199003071234" not in where and "me@example.com" not in where, where
        assert "我的身份证号是***" in where  # the rest of what was said is kept
