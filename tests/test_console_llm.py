"""The console's LLM parts, against the local OpenAI-compatible fake: the dashboard's usage
card, the kept answers, promoting one into the knowledge base (as it is, or edited)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    admin_fixture,  # noqa: F401 - the admin fixture
    login,
    post,
)
from tests.fakellm import MODEL, FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from tests.test_console_pages import entry
from wxbot.llm import usage

INVOICE_Q, INVOICE_A = "发票在哪里下载", "发票在「我的-订单-发票」里下载。"
XSS_Q = '"><img src=x onerror=alert(1)> 能退吗'
XSS_A = "<script>alert(2)</script> 可以退。"


@pytest.fixture
def app(make_app, fake_llm: FakeLlm):  # type: ignore[no-untyped-def]
    answers = {INVOICE_Q: INVOICE_A, XSS_Q: XSS_A}
    fake_llm.answer = lambda messages: answers.get(messages[-1]["content"], "随便说说。")
    return make_app(
        **fake_llm.settings(
            admin_token=ADMIN_TOKEN,
            llm_rate=0,
            llm_daily_tokens=0,
            llm_price_input=2.0,
            llm_price_output=8.0,
        )
    )


def kept(app) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return usage.list_answers(conn, 0, 100)[1]


def kept_id(app, question: str) -> int:  # type: ignore[no-untyped-def]
    return next(int(k["id"]) for k in kept(app) if k["question"] == question)


def test_the_dashboard_shows_calls_tokens_and_cost(app, admin, bot, fake_llm) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", INVOICE_Q)
    say(bot, "o_2", "讲个笑话")
    page = admin.get("/admin/").text
    card = page[page.index('id="llm-usage"') :]
    card = card[: card.index("</section>")]
    assert MODEL in card
    assert '<td id="llm-calls-today">2</td>' in card and '<td id="llm-calls-total">2</td>' in card
    tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in fake_llm.usage)
    cost = sum(u["prompt_tokens"] * 2.0 + u["completion_tokens"] * 8.0 for u in fake_llm.usage)
    assert f"<td>{tokens}</td>" in card and f"{cost / 1e6:.4f}" in card
    assert "费用按 WXBOT_LLM_PRICE_INPUT" in card


def test_questions_handed_to_the_llm_count_in_the_answer_rates(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", INVOICE_Q)  # nothing in the knowledge base: the LLM answers
    say(bot, "o_2", "讲个笑话")
    page = admin.get("/admin/").text
    card = page[page.index("大模型回答</span>") :]
    card = card[: card.index("</div>")]
    assert "100%" in card and "2 个问题" in card  # both questions went to the LLM


def test_without_the_llm_the_card_says_how_to_turn_it_on(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token=ADMIN_TOKEN).test_client()
    login(client)
    page = client.get("/admin/").text
    assert "大模型回答未开启" in page and "WXBOT_LLM_URL" in page
    assert "还没有大模型回答" in client.get("/admin/llm").text


def test_an_answer_is_promoted_in_one_click(app, admin, bot, fake_llm) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "o_1", INVOICE_Q)) == INVOICE_A
    page = admin.get("/admin/llm").text
    answer_id = kept_id(app, INVOICE_Q)
    assert INVOICE_Q in page and INVOICE_A in page and "o_1" in page
    assert f'action="/admin/llm/{answer_id}/promote"' in page
    resp = post(admin, f"/admin/llm/{answer_id}/promote")
    assert resp.status_code == 303
    entry_id = int(resp.headers["Location"].split("entry=")[1])
    assert entry(app, entry_id).questions == [INVOICE_Q]
    assert entry(app, entry_id).source_ref == f"llm-answer:{answer_id}"
    calls = len(fake_llm.requests)
    assert content(say(bot, "o_2", INVOICE_Q)) == INVOICE_A  # from the knowledge base now
    assert len(fake_llm.requests) == calls
    page = admin.get(resp.headers["Location"]).text
    assert "已加入知识库" in page and f'href="/admin/knowledge/{entry_id}"' in page
    again = post(admin, f"/admin/llm/{answer_id}/promote")
    assert again.status_code == 409 and f"已经加入知识库：条目 #{entry_id}" in again.text
    # the JSON API goes through the same code
    api = admin.post(
        f"/admin/api/llm/answers/{answer_id}/promote",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert api.status_code == 409
    assert post(admin, "/admin/llm/424242/promote").status_code == 404
    # the entry deleted: the answer can be promoted again
    post(admin, f"/admin/knowledge/{entry_id}/delete")
    assert "已删除" in admin.get("/admin/llm").text
    assert post(admin, f"/admin/llm/{answer_id}/promote").status_code == 303


def test_an_answer_is_edited_before_it_is_promoted(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", INVOICE_Q)
    answer_id = kept_id(app, INVOICE_Q)
    form = admin.get(f"/admin/llm/{answer_id}/promote").text
    assert f'value="{INVOICE_Q}"' in form and f">{INVOICE_A}</textarea>" in form
    refused = post(admin, f"/admin/llm/{answer_id}/promote", question="发票在哪里下载", answer=" ")
    assert refused.status_code == 422 and "答案不能为空" in refused.text
    assert 'value="发票在哪里下载"' in refused.text
    resp = post(
        admin,
        f"/admin/llm/{answer_id}/promote",
        question="电子发票在哪下载",
        answer="在「我的-订单」点「发票」下载 PDF。",
    )
    assert resp.status_code == 303
    entry_id = int(resp.headers["Location"].split("entry=")[1])
    assert entry(app, entry_id).questions == ["电子发票在哪下载"]
    assert entry(app, entry_id).answer == "在「我的-订单」点「发票」下载 PDF。"


def test_answers_are_filtered_by_user_and_shown_as_text(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", INVOICE_Q)
    say(bot, "o_2", XSS_Q)
    page = admin.get("/admin/llm").text
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "&lt;img src=x" in page
    only = admin.get("/admin/llm?openid=o_1").text
    assert INVOICE_Q in only and "能退吗" not in only
    form = admin.get(f"/admin/llm/{kept_id(app, XSS_Q)}/promote").text
    assert "<img src=x" not in form and "<script>alert" not in form
    user = admin.get("/admin/conversations/o_2").text
    assert "1 次调用" in user and 'href="/admin/llm?openid=o_2"' in user
