"""LLM answers through the engine (SQLite and MySQL) against a local OpenAI-compatible fake:
what the model sees (grounding, the exact history window, nobody else's data), the memory
across expiry and eviction, usage, limits, failures, and no extra SQL for the questions the
knowledge base answers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakellm import API_KEY, FakeLlm, fake_llm_fixture, rounds_in  # noqa: F401
from tests.helpers import content, say, sql_sent
from tests.helpers import event as event_msg
from wxbot.dialog.engine import Bot
from wxbot.dialog.flow import Deps
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.llm import fallback
from wxbot.llm.models import LlmAnswer, Memory
from wxbot.llm.prompt import GROUNDING_RULES
from wxbot.models import Context
from wxbot.qa import writer

TOKEN = "llm-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REFUND_Q, REFUND_A = "会员怎么退款", "开通 7 天内可在「我的-订单」申请退款。"


@pytest.fixture
def llm_app(make_app, fake_llm: FakeLlm):  # type: ignore[no-untyped-def]
    def build(**extra: Any):  # type: ignore[no-untyped-def]
        limits = {"llm_rate": 0, "llm_daily_tokens": 0}  # tested on their own
        return make_app(**fake_llm.settings(admin_token=TOKEN, **{**limits, **extra}))

    return build


def teach(bot: Bot, question: str, answer: str) -> None:
    with bot.engine.begin() as conn:
        writer.create_entry(conn, [question], answer, now=1.0, source="api")


def ask(bot: Bot, openid: str, question: str, transcript: list[tuple[str, str]]) -> str:
    answer = content(say(bot, openid, question))
    transcript.append((question, answer))
    return answer


def memory_row(bot: Bot, openid: str) -> Any:
    with bot.engine.connect() as conn:
        return conn.execute(select(Memory.__table__).where(Memory.openid == openid)).first()


# --- what the model sees ----------------------------------------------------------------------


def test_the_prompt_is_grounded_in_the_knowledge_base(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app().extensions["wxbot.bot"]
    teach(bot, REFUND_Q, REFUND_A)
    assert content(say(bot, "o_u", "会员退款")) == REFUND_A  # confident: no LLM call
    assert fake_llm.requests == []
    reply = content(say(bot, "o_u", "会员退款要多久到账"))  # related, not confident
    assert reply.startswith("LLM答：") and "会员退款要多久到账" in reply
    system, question = fake_llm.last[0], fake_llm.last[-1]
    assert system["role"] == "system" and GROUNDING_RULES in system["content"]
    assert "退款" not in system["content"]  # neither user text nor knowledge in the system role
    assert question["role"] == "user"
    assert "【知识库资料】" in question["content"] and REFUND_Q in question["content"]
    assert REFUND_A in question["content"] and question["content"].endswith("会员退款要多久到账")
    say(bot, "o_u", "讲个笑话")  # nothing related in the knowledge base: no grounding
    assert fake_llm.last[-1]["content"] == "讲个笑话"
    assert GROUNDING_RULES not in fake_llm.last[0]["content"]


def test_the_history_window_is_exact_through_clear_and_window_changes(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(history_rounds=3)
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    teach(bot, REFUND_Q, REFUND_A)
    said: list[tuple[str, str]] = []
    for i in range(4):
        ask(bot, "o_u", f"第{i}个问题是什么意思", said)
    ask(bot, "o_u", "会员退款", said)  # answered by the knowledge base: still part of the memory
    ask(bot, "o_u", "第5个问题是什么意思", said)
    assert rounds_in(fake_llm.last) == said[2:5]  # the last 3 rounds before the question
    assert said[4] == ("会员退款", REFUND_A)

    assert client.delete("/admin/api/sessions/o_u/history", headers=AUTH).status_code == 200
    said.clear()
    ask(bot, "o_u", "清空后第一个问题", said)
    assert rounds_in(fake_llm.last) == []
    ask(bot, "o_u", "清空后第二个问题", said)
    assert rounds_in(fake_llm.last) == said[:1]

    resp = client.put("/admin/api/sessions/o_u", json={"history_rounds": 1}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["history_rounds"] == 1
    ask(bot, "o_u", "窗口为一轮", said)
    assert rounds_in(fake_llm.last) == said[-2:-1]
    client.put("/admin/api/sessions/o_u", json={"history_rounds": 5}, headers=AUTH)
    for i in range(5):
        ask(bot, "o_u", f"窗口为五轮之{i}", said)
    assert rounds_in(fake_llm.last) == said[-6:-1]  # grew back to exactly 5 rounds
    history = client.get("/admin/api/sessions/o_u/history", headers=AUTH).get_json()
    assert history["total_rounds"] == 5 and history["history_rounds"] == 5


def test_no_other_users_data_is_ever_sent(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app().extensions["wxbot.bot"]
    for i in range(3):
        say(bot, "o_alice", f"爱丽丝的秘密{i}号")
        say(bot, "o_bob", f"鲍勃的问题{i}号")
    alice = [r for r in fake_llm.requests if "爱丽丝" in r["messages"][-1]["content"]]
    bob = [r for r in fake_llm.requests if "鲍勃" in r["messages"][-1]["content"]]
    assert len(alice) == len(bob) == 3
    assert all("鲍勃" not in json.dumps(r, ensure_ascii=False) for r in alice)
    assert all("爱丽丝" not in json.dumps(r, ensure_ascii=False) for r in bob)


def test_memory_survives_context_expiry_and_eviction(llm_app, fake_llm, clock) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app().extensions["wxbot.bot"]
    said: list[tuple[str, str]] = []
    ask(bot, "o_u", "我叫小明，记住了吗", said)
    clock.advance(601)  # the context expires
    ask(bot, "o_u", "我叫什么名字", said)
    assert rounds_in(fake_llm.last) == said[:1]
    clock.advance(601)
    assert bot.clean_up() == (1, 0)  # the context row is evicted ...
    with bot.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Context.__table__)).scalar() == 0
    ask(bot, "o_u", "再说一次我叫什么", said)  # ... and the new one starts from the memory
    assert rounds_in(fake_llm.last) == said[:2]


def test_a_question_the_knowledge_base_answers_costs_no_extra_statement(
    llm_app, fake_llm, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    base = llm_app().extensions["wxbot.bot"]
    teach(base, REFUND_Q, REFUND_A)
    say(base, "o_warm", "会员退款")  # the index catches up with the new entry here, not below
    # the same engine without memory or LLM (as before this feature)
    plain = Bot(base.engine, base.settings, Deps(settings=base.settings, kb=base.deps.kb))
    say(plain, "o_warm_plain", "会员退款")  # both engines have counted the stored sessions
    # the one-in-500 housekeeping (wxbot.dialog.engine) is not a message's statements
    monkeypatch.setattr(Bot, "_maybe_clean_up", lambda self: None)
    try:
        figures = []
        with sql_sent(base.engine) as sent:
            for bot, user in ((plain, "o_plain"), (base, "o_memory")):
                runs = []
                for _ in range(2):  # a new user's first question, then a known user's
                    sent.clear()
                    assert content(say(bot, user, "会员退款")) == REFUND_A
                    runs.append(len([s for s in sent if not s.startswith("BEGIN")]))
                figures.append(runs)
    finally:
        plain.close()
    assert figures[0] == figures[1] and figures[0][1] > 0
    assert fake_llm.requests == []


# --- usage, limits --------------------------------------------------------------------------


def test_usage_adds_up_per_user_and_in_total(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(llm_price_input=2.0, llm_price_output=8.0)
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    for i in range(3):
        say(bot, "o_a", f"甲的问题{i}")
    say(bot, "o_b", "乙的问题")
    pairs = zip(fake_llm.requests, fake_llm.usage, strict=True)
    asked = [(r["messages"][-1]["content"], u) for r, u in pairs]
    per_user = {}
    for openid, mark, n in (("o_a", "甲", 3), ("o_b", "乙", 1)):
        mine = [u for question, u in asked if mark in question]
        got = client.get(f"/admin/api/sessions/{openid}", headers=AUTH).get_json()["usage"]
        assert got["calls"] == n and got["failures"] == 0
        assert got["prompt_tokens"] == sum(u["prompt_tokens"] for u in mine)
        assert got["completion_tokens"] == sum(u["completion_tokens"] for u in mine)
        assert got["tokens_today"] == got["prompt_tokens"] + got["completion_tokens"]
        per_user[openid] = got
    total = client.get("/admin/api/stats", headers=AUTH).get_json()["llm"]
    prompt = sum(u["prompt_tokens"] for u in fake_llm.usage)
    completion = sum(u["completion_tokens"] for u in fake_llm.usage)
    assert (total["calls"], total["prompt_tokens"], total["completion_tokens"]) == (
        4,
        prompt,
        completion,
    )
    assert total["cost"] == pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6)
    assert total["cost"] == pytest.approx(sum(u["cost"] for u in per_user.values()))
    assert total["today"]["calls"] == 4 and total["mode"] == "fallback"


def test_per_user_rate_and_daily_token_cap(llm_app, fake_llm, clock) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(llm_rate=2, llm_daily_tokens=60, llm_system_prompt="客服")
    bot = app.extensions["wxbot.bot"]
    say(bot, "o_u", "第一个问题")
    say(bot, "o_u", "第二个问题")
    assert content(say(bot, "o_u", "第三个问题")) == fallback.RATE_LIMITED
    assert len(fake_llm.requests) == 2
    assert content(say(bot, "o_other", "别人的问题")).startswith("LLM答：")  # per user
    used = sum(u["total_tokens"] for u in fake_llm.usage[:2])
    assert used < 60
    clock.advance(61)  # the minute has passed; under the daily cap still
    assert content(say(bot, "o_u", "一分钟后的问题")).startswith("LLM答：")
    assert used + fake_llm.usage[3]["total_tokens"] >= 60
    assert content(say(bot, "o_u", "再问一个")) == fallback.DAILY_LIMIT
    assert len(fake_llm.requests) == 4
    clock.advance(86_400)  # the next day
    assert content(say(bot, "o_u", "第二天的问题")).startswith("LLM答：")


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [("status", 500), ("status", 429, {"Retry-After": "60"}), ("raw", b"{oops"), ("content", "")],
)
def test_failures_become_the_dont_know_reply(llm_app, fake_llm, step, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    app = llm_app()
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    fake_llm.script.append(step)
    assert content(say(bot, "o_u", "火星上有信号吗")) == DONT_KNOW
    unanswered = client.get("/admin/api/unanswered", headers=AUTH).get_json()["items"]
    assert [u["question"] for u in unanswered] == ["火星上有信号吗"]
    usage = client.get("/admin/api/sessions/o_u", headers=AUTH).get_json()["usage"]
    assert (usage["calls"], usage["failures"]) == (1, 1)
    reply = content(say(bot, "o_u", "量子计算机能买吗"))
    if step[1] == 429:  # honoured: no call until Retry-After has passed
        assert reply == DONT_KNOW and len(fake_llm.requests) == 1
    else:
        assert reply.startswith("LLM答：") and len(fake_llm.requests) == 2
    assert API_KEY not in caplog.text


def test_a_timeout_becomes_the_dont_know_reply(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app(llm_timeout=0.3).extensions["wxbot.bot"]
    fake_llm.hold()  # the model never answers in time
    assert content(say(bot, "o_u", "火星上有信号吗")) == DONT_KNOW
    fake_llm.release()
    assert len(fake_llm.requests) == 1  # not sent twice


def test_long_answers_are_capped_and_paged(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app(llm_max_tokens=100).extensions["wxbot.bot"]
    fake_llm.answer = lambda messages: "很长的回答。" * 250
    first = content(say(bot, "o_u", "写一篇长文"))
    assert "（第1/" in first and fake_llm.requests[0]["max_tokens"] == 100
    second = content(say(bot, "o_u", "继续"))
    assert "（第2/" in second and len(fake_llm.requests) == 1
    fake_llm.script.append(("length", "说到一半"))
    assert content(say(bot, "o_u", "再写一篇")) == "说到一半" + fallback.TRUNCATED


# --- promotion, forgetting ----------------------------------------------------------------------


def test_a_good_answer_is_promoted_into_the_knowledge_base(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    app = llm_app()
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    fake_llm.answer = lambda messages: "发票在「我的-订单-发票」里下载。"
    say(bot, "o_u", "发票在哪里下载")
    kept = client.get("/admin/api/llm/answers", headers=AUTH).get_json()
    assert kept["total"] == 1
    item = kept["items"][0]
    assert (item["question"], item["openid"], item["entry_id"]) == ("发票在哪里下载", "o_u", None)
    resp = client.post(f"/admin/api/llm/answers/{item['id']}/promote", headers=AUTH)
    assert (
        resp.status_code == 201 and resp.get_json()["answer"] == "发票在「我的-订单-发票」里下载。"
    )
    again = client.post(f"/admin/api/llm/answers/{item['id']}/promote", headers=AUTH)
    assert again.status_code == 409
    assert client.post("/admin/api/llm/answers/999/promote", headers=AUTH).status_code == 404
    assert content(say(bot, "o_other", "发票在哪里下载")) == "发票在「我的-订单-发票」里下载。"
    assert len(fake_llm.requests) == 1  # now the knowledge base answers it


def test_unsubscribe_deletes_the_memory_usage_and_answers(llm_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = llm_app().extensions["wxbot.bot"]
    say(bot, "o_u", "记住我喜欢蓝色")
    say(bot, "o_keep", "别人的问题")
    assert memory_row(bot, "o_u") is not None
    bot.handle(event_msg("o_u", "unsubscribe"))
    assert memory_row(bot, "o_u") is None and memory_row(bot, "o_keep") is not None
    with bot.engine.connect() as conn:
        owners = conn.execute(select(LlmAnswer.openid)).scalars().all()
    assert owners == ["o_keep"]
    say(bot, "o_u", "我喜欢什么颜色")  # comes back: a blank memory
    assert rounds_in(fake_llm.last) == []
