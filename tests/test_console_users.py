"""The 对话 pages with the per-user memory: users whose context was evicted, each user's reply
language and history window, setting the window, forgetting a user known only by memory."""

from __future__ import annotations

import re

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    admin_fixture,  # noqa: F401 - the admin fixture
    post,
)
from tests.helpers import say
from wxbot.i18n import LANGUAGE_NAMES


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=ADMIN_TOKEN, history_rounds=4)


def row_of(page: str, openid: str) -> str:
    start = page.index(f'href="/admin/conversations/{openid}"')
    return page[start : page.index("</tr>", start)]


def test_users_come_from_the_memory_with_language_and_window(app, admin, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_old", "你好")
    assert post(admin, "/admin/conversations/o_old/window", history_rounds="2").status_code == 303
    clock.advance(700)
    assert bot.clean_up()[0] == 1  # o_old's context is evicted; the memory keeps them
    say(bot, "o_en", "Hello, what are your opening hours?")
    say(bot, "o_th", "ภาษา th")
    page = admin.get("/admin/conversations").text
    assert page.index("o_th") < page.index("o_old")  # by last activity
    old = row_of(page, "o_old")
    assert "无会话" in old and "你好" in old and "1 / 2 轮" in old
    assert f"{LANGUAGE_NAMES['en']}（en）" in row_of(page, "o_en")
    assert "1 / 4 轮" in row_of(page, "o_en")  # the default window
    detail = admin.get("/admin/conversations/o_old").text
    assert "会话已被清理" in detail and 'class="bubble user"' in detail
    assert re.search(r'id="history-window">2 轮 <span class="muted small">为该用户单独设置', detail)
    th = admin.get("/admin/conversations/o_th").text
    assert f"{LANGUAGE_NAMES['th']}（th）" in th and "用户指定" in th
    en = admin.get("/admin/conversations/o_en").text
    assert "按用户的消息自动识别" in en and "默认（WXBOT_HISTORY_ROUNDS）" in en
    # the JSON API reads the same (one implementation in wxbot.admin.ops.users)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    api = admin.get("/admin/api/sessions/o_th", headers=bearer).get_json()
    assert api["language"] == {"code": "th", "explicit": True}
    listed = admin.get("/admin/api/sessions", headers=bearer).get_json()["items"]
    assert {u["openid"]: u["language"] for u in listed} == {
        "o_th": "th",
        "o_en": "en",
        "o_old": "zh",
    }


def test_the_window_is_set_and_reset(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    for i in range(4):
        say(bot, "o_u", f"第 {i} 个问题")
    resp = post(admin, "/admin/conversations/o_u/window", history_rounds="2")
    assert resp.status_code == 303 and "done=window" in resp.headers["Location"]
    page = admin.get(resp.headers["Location"]).text
    assert "已设置历史轮数" in page and page.count('class="bubble user"') == 2
    assert 'name="history_rounds" id="history_rounds" min="1" max="50" value="2"' in page
    for bad in ("0", "51", "abc", "-1"):
        refused = post(admin, "/admin/conversations/o_u/window", history_rounds=bad)
        assert refused.status_code == 422 and "1 到 50 之间的整数" in refused.text
        assert f'value="{bad}"' in refused.text  # what was typed
    assert post(admin, "/admin/conversations/o_u/window", history_rounds="").status_code == 303
    page = admin.get("/admin/conversations/o_u").text
    assert 'placeholder="默认 4"' in page and "默认（WXBOT_HISTORY_ROUNDS）" in page
    assert post(admin, "/admin/conversations/o_x/window", history_rounds="3").status_code == 404


def test_clearing_and_forgetting_a_user_known_only_by_memory(app, admin, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_old", "你好")
    post(admin, "/admin/conversations/o_old/window", history_rounds="3")
    clock.advance(700)
    bot.clean_up()
    assert post(admin, "/admin/conversations/o_old/clear").status_code == 303
    assert "没有历史记录" in admin.get("/admin/conversations/o_old").text
    assert post(admin, "/admin/conversations/o_old/forget").status_code == 303
    assert admin.get("/admin/conversations/o_old").status_code == 404
    assert "o_old" not in admin.get("/admin/conversations").text
    assert post(admin, "/admin/conversations/o_old/forget").status_code == 404
