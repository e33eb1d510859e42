"""The 流程 page and the dashboard's funnel card: the flows loaded from WXBOT_FLOWS_DIR with
their triggers, steps, prompts in every user language, action, and funnels from real use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    admin_fixture,  # noqa: F401 - the admin fixture
    login,
)
from tests.helpers import content, say
from wxbot.flows import messages as say_texts
from wxbot.i18n import translate

XSS = '"><img src=x onerror=alert(1)>'
ORDER_FLOW = f"""
name: order_check
triggers: [查订单, "<script>alert(1)</script>查单"]
steps:
  - slot: order_no
    type: digits
    length: 6
    ask: {{zh: '请发 6 位订单号 {XSS}', en: Send your 6-digit order number.}}
    invalid: {{zh: 订单号是 6 位数字。}}
  - slot: city
    type: choice
    options: [北京, 上海]
    ask: {{zh: 验证码已失效，请重新输入手机号。}}
action:
  reply: {{zh: "订单 {{order_no}}（{{city}}）已登记。"}}
"""
HOOK_FLOW = """
name: refund_hook
triggers: [申请退货]
steps:
  - slot: reason
    type: text
    ask: {zh: 请说明退货原因。}
action:
  webhook: http://shop:s3cret@127.0.0.1:9/refund?token=abc123
"""


@pytest.fixture
def app(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "order.yaml").write_text(ORDER_FLOW, encoding="utf-8")
    (flows / "hook.yaml").write_text(HOOK_FLOW, encoding="utf-8")
    return make_app(admin_token=ADMIN_TOKEN, flows_dir=str(flows))


def section(page: str, flow: str) -> str:
    start = page.index(f'id="flow-{flow}"')
    return page[start : page.index("</section>", start)]


def test_each_flow_with_its_triggers_steps_and_action(app, admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/flows").text
    order = section(page, "order_check")
    assert "order.yaml:" in order and '<span class="chip">查订单</span>' in order
    assert "&lt;script&gt;alert(1)&lt;/script&gt;查单" in order  # a trigger shown as text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "6 位数字" in order and "选项：北京、上海" in order and "例：123456" in order
    assert "English（en）</dt><dd>Send your 6-digit order number.</dd>" in order
    assert "订单号是 6 位数字。" in order
    # a language the file lacks: the catalogue's translation if there is one, else Chinese
    lost_en = translate(say_texts.LOST, "en")
    assert lost_en != say_texts.LOST
    assert f'{lost_en} <span class="tag">翻译目录</span>' in order
    assert (
        '请发 6 位订单号 &#34;&gt;&lt;img src=x onerror=alert(1)&gt; <span class="tag">未翻译，用中文</span>'
        in order
    )
    assert "订单 {order_no}（{city}）已登记。" in order
    hook = section(page, "refund_hook")
    assert "POST http://127.0.0.1:9/refund?…" in hook  # no password, no token
    assert "s3cret" not in page and "abc123" not in page
    assert translate(say_texts.WEBHOOK_FAILED, "zh") in hook  # what users get when it fails
    assert translate(say_texts.EXAMPLE, "zh", example="…") in hook


def test_funnels_follow_what_users_did(app, admin, bot, clock) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "查订单")).startswith("请发 6 位订单号")
    say(bot, "u1", "12345")  # a failed attempt
    say(bot, "u1", "123456")
    assert content(say(bot, "u1", "上海")) == "订单 123456（上海）已登记。"
    say(bot, "u2", "查订单")
    say(bot, "u2", "取消")
    say(bot, "u3", "查订单")  # still in the flow
    say(bot, "u4", "查订单")
    clock.advance(3600)  # u3 and u4 walked away: timed out once their context expired
    say(bot, "u5", "查订单")
    page = admin.get("/admin/flows").text
    order = section(page, "order_check")
    assert '<th>进入流程</th><td><svg class="bar"' in order
    assert '<td class="num">5</td>' in order  # entered
    assert '<tr class="done"><th>完成</th>' in order
    chips = order[order.index('class="small funnel-exits"') :]
    assert "取消 <strong>1</strong>" in chips and "超时离开 <strong>2</strong>" in chips
    assert "进行中 <strong>1</strong>" in chips
    steps = order[order.index("<tbody>") :]
    figures = re.findall(r'<td class="nowrap">([^<]*)<', steps)
    assert [f.strip() for f in figures] == ["5 / 1", "1 / 1"]  # order_no, city: entered / filled
    assert "<td>0.5</td>" in steps  # order_no: median failed attempts of u1 (1) and u2 (0)
    dashboard = admin.get("/admin/").text
    card = dashboard[dashboard.index('id="flow-funnels"') :]
    card = re.sub(r">\s+<", "><", card[: card.index("</section>")])
    assert (
        'href="/admin/flows#flow-order_check">order_check</a></td><td>5</td><td>1</td><td>20%</td>'
        in card
    )
    assert "refund_hook" in card


def test_no_flows_says_where_they_come_from(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "none").mkdir()
    client = make_app(admin_token=ADMIN_TOKEN, flows_dir=str(tmp_path / "none")).test_client()
    login(client)
    page = client.get("/admin/flows").text
    assert 'id="no-flows"' in page and str(tmp_path / "none") in page
    assert "没有加载业务流程" in client.get("/admin/").text
