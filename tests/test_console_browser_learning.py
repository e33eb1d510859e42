"""The console's second round in real headless Chromium, with WeChat driven through the real
signed, encrypted callback and the LLM played by the local OpenAI-compatible fake: a synonym
group added in the 同义词 tab, an LLM answer promoted, a group of unanswered questions
attached through the search box, and user text shown as text on the new pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.test_console_browser import (  # noqa: F401 - browser is a fixture
    ADMIN_TOKEN,
    APPID,
    TOKEN,
    XSS,
    ask,
    browser,
    find,
    find_all,
    log_in,
    wait_for,
    wait_text,
)
from tests.wechat_fakes import KEY, http_server
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.qa import learning, store, unanswered, writer
from wxbot.wechat.simulator import WeChatSimulator

INVOICE_Q, INVOICE_A = "发票在哪里下载", "发票在「我的-订单-发票」里下载。"
FLOW = f"""
name: xss_flow
triggers: ['<img src=y onerror="window.__xss = 4">查询订单']
steps:
  - slot: order_no
    type: digits
    length: 6
    ask: {{zh: '请发订单号 {XSS[0]}'}}
action:
  reply: {{zh: 好的。}}
"""


@pytest.fixture
def open_site(make_app, browser, fake_llm: FakeLlm, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Serve a bot (``llm=True``: with the fake LLM as its fallback); returns the site."""
    answers = {INVOICE_Q: INVOICE_A, XSS[0]: XSS[1]}
    fake_llm.answer = lambda messages: answers.get(messages[-1]["content"], "大模型的回答。")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "xss.yaml").write_text(FLOW, encoding="utf-8")
    with ExitStack() as stack:

        def build(llm: bool = False) -> dict[str, Any]:
            extra = fake_llm.settings(llm_rate=0, llm_daily_tokens=0) if llm else {}
            app = make_app(
                admin_token=ADMIN_TOKEN,
                token=TOKEN,
                appid=APPID,
                encoding_aes_key=KEY,
                flows_dir=str(flows),
                **extra,
            )
            sim = WeChatSimulator(TOKEN, APPID, KEY, "safe", clock=app.extensions["wxbot.clock"])
            wechat = stack.enter_context(http_server(app))
            browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
            base = wechat.removesuffix("/wechat")
            return {"app": app, "base": base, "sim": sim, "wechat": wechat, "b": browser}

        yield build
        browser.get("about:blank")


@pytest.fixture
def site(open_site) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return open_site()


def add_entry(site: dict[str, Any], question: str, answer: str) -> int:
    with site["app"].extensions["wxbot.engine"].begin() as conn:
        return writer.create_entry(conn, [question], answer, now=0, source="api")


def test_a_synonym_group_added_in_the_browser_then_answered_on_wechat(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    add_entry(site, "能开收据吗", "可以，在订单页申请。")
    add_entry(site, "营业时间是几点", "9:00-17:00。")
    assert ask(site, "小票能开吗") != "可以，在订单页申请。"  # not sure: not answered
    log_in(site, start="/admin/synonyms")
    wait_for(b, "#new-synonyms input[name='words']").send_keys("收据 小票")
    find(b, "#new-synonyms button.primary").click()
    wait_text(b, ".flash.ok", "已添加同义词组")
    first = find_all(b, "#synonym-groups tbody tr")[0]  # newest first
    assert [c.text for c in first.find_elements("css selector", ".chip")] == ["收据", "小票"]
    assert ask(site, "小票能开吗") == "可以，在订单页申请。"


def test_an_llm_answer_promoted_in_the_browser_then_answered_from_the_knowledge_base(
    open_site, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    site = open_site(llm=True)
    b = site["b"]
    assert ask(site, INVOICE_Q, openid="o_first") == INVOICE_A  # the LLM answered
    assert len(fake_llm.requests) == 1
    log_in(site, start="/admin/llm")
    article = next(a for a in find_all(b, "article.llm-answer") if INVOICE_Q in a.text)
    assert INVOICE_A in article.text
    article.find_element("css selector", "button.promote").click()
    wait_text(b, ".flash.ok", "已加入知识库")
    assert ask(site, INVOICE_Q, openid="o_second") == INVOICE_A
    assert len(fake_llm.requests) == 1  # the knowledge base answered, not the LLM
    with site["app"].extensions["wxbot.engine"].connect() as conn:
        assert store.find_entry(conn, INVOICE_Q).answer == INVOICE_A
    wait_for(b, "a[href^='/admin/knowledge/']").click()
    wait_text(b, "h1", INVOICE_Q)


def test_a_group_attached_through_the_search_box(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    for text in ("周末上班吗", "周末上班吗", "周六开门吗"):
        assert ask(site, text).startswith(DONT_KNOW)
    hours = add_entry(site, "门店每天几点开关门", "每天 9:00-21:00，周末照常。")
    log_in(site, start="/admin/unanswered?sort=grouped")
    group = wait_for(b, "article.group")
    assert "共 3 次" in group.text and "周六开门吗" in group.text
    group.find_element("css selector", "details.attach summary").click()
    group.find_element("css selector", 'input[name="q"]').send_keys("几点开关门")
    button = wait_for(b, "article.group [data-results] button.choice")
    assert f"#{hours}" in button.text
    button.click()
    wait_text(b, ".flash.ok", "（2 个问题）")
    assert ask(site, "周六开门吗") == "每天 9:00-21:00，周末照常。"
    with site["app"].extensions["wxbot.engine"].connect() as conn:
        assert store.get_entry(conn, hours).questions == [
            "门店每天几点开关门",
            "周末上班吗",
            "周六开门吗",
        ]
        assert unanswered.count_unanswered(conn) == 0


def test_user_and_operator_text_renders_as_text_on_the_new_pages(open_site) -> None:  # type: ignore[no-untyped-def]
    site = open_site(llm=True)
    b = site["b"]
    for i, text in enumerate(XSS):
        ask(site, text, openid=f"o_xss_{i}")  # unanswered, then answered by the LLM
    engine = site["app"].extensions["wxbot.engine"]
    with engine.begin() as conn:
        entry = writer.create_entry(conn, ["退款"], "答案", now=0, source="api")
        for openid in ("o_a", "o_b"):
            learning.record_pick(conn, openid, f"退款 {XSS[1]}", entry, now=1.0, min_users=2)
    log_in(site)
    pages = [
        "/admin/",
        "/admin/llm",
        "/admin/llm?openid=o_xss_1",
        "/admin/learned",
        "/admin/synonyms",
        "/admin/flows",
        "/admin/unanswered?sort=grouped",
        "/admin/conversations",
        "/admin/conversations/o_xss_0",
        f"/admin/knowledge/{entry}",
    ]
    for page in pages:
        b.get(site["base"] + page)
        wait_for(b, "main")
        state = b.execute_script(
            "return {xss: window.__xss, imgs: document.images.length,"
            " scripts: document.scripts.length, text: document.body.textContent}"
        )
        assert state["xss"] is None, page
        assert state["imgs"] == 0 and state["scripts"] == 1, page  # only console.js
        if page != "/admin/synonyms":  # synonyms keep letters and digits only
            assert any(x in state["text"] for x in XSS), page  # there, as text
