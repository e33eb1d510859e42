"""The LLM answers kept for promotion hold the user's questions word for word, so they go when
the user clears their memory (「清除记忆」, or the admin's DELETE …/history) and, like stored
histories, after WXBOT_MEMORY_DAYS: before, both left them for ever. SQLite and MySQL."""

from __future__ import annotations

from typing import Any

from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.cli import cli
from wxbot.dialog.forgetting import FORGOTTEN
from wxbot.i18n import translate

TOKEN = "kept-answers-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = 86_400.0


def kept(client: Any, openid: str) -> list[str]:
    """The questions of the user's kept LLM answers, as the admin API lists them."""
    resp = client.get(f"/admin/api/llm/answers?openid={openid}&per_page=100", headers=AUTH)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return sorted(item["question"] for item in resp.get_json()["items"])


def llm_app(make_app: Any, fake_llm: FakeLlm, **settings: Any) -> Any:
    return make_app(
        **fake_llm.settings(admin_token=TOKEN, llm_rate=0, llm_daily_tokens=0, **settings)
    )


def test_clearing_the_memory_by_chat_deletes_the_users_kept_answers(make_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(make_app, fake_llm)
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_u", "我的身份证号是多少来着")
    say(bot, "o_u", "帮我记住我住在幸福路8号")
    say(bot, "o_other", "别人的问题是什么")
    assert kept(client, "o_u") == ["帮我记住我住在幸福路8号", "我的身份证号是多少来着"]

    say(bot, "o_u", "清除记忆")
    assert content(say(bot, "o_u", "是")) == translate(FORGOTTEN, "zh")
    assert kept(client, "o_u") == []
    assert kept(client, "o_other") == ["别人的问题是什么"]  # nobody else's


def test_the_admins_clear_deletes_them_too(make_app, fake_llm) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(make_app, fake_llm)
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_u", "我的问题是什么")
    say(bot, "o_other", "别人的问题是什么")
    assert client.delete("/admin/api/sessions/o_u/history", headers=AUTH).status_code == 200
    assert kept(client, "o_u") == []
    assert kept(client, "o_other") == ["别人的问题是什么"]


def test_kept_answers_older_than_the_retention_go(make_app, fake_llm, clock) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(make_app, fake_llm, memory_days=30)
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_u", "第一个问题是什么")
    say(bot, "o_u", "第二个问题是什么")
    clock.advance(20 * DAY)
    say(bot, "o_u", "第三个问题是什么")
    clock.advance(11 * DAY)
    assert bot.forget_old_answers(batch=1) == 2  # in batches of one: all the same
    assert kept(client, "o_u") == ["第三个问题是什么"]
    clock.advance(20 * DAY)
    result = app.test_cli_runner().invoke(cli, ["sessions", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 kept LLM answers" in result.output
    assert kept(client, "o_u") == []


def test_the_clean_up_that_messages_run_takes_them_and_zero_keeps_them(
    make_app, fake_llm, clock
) -> None:  # type: ignore[no-untyped-def]
    app = llm_app(make_app, fake_llm)  # the default: 90 days
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_u", "很久以前的问题是什么")
    clock.advance(89 * DAY)
    bot.housekeeping.clean_up_a_batch()
    assert kept(client, "o_u") == ["很久以前的问题是什么"]
    clock.advance(2 * DAY)
    bot.housekeeping.clean_up_a_batch()
    assert kept(client, "o_u") == []

    keeping = llm_app(make_app, fake_llm, memory_days=0)
    bot, client = keeping.extensions["wxbot.bot"], keeping.test_client()
    say(bot, "o_u", "永远保留的问题是什么")
    clock.advance(3650 * DAY)
    assert bot.forget_old_answers() == 0
    assert kept(client, "o_u") == ["永远保留的问题是什么"]
