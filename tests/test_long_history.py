"""A long conversation with the largest history window fits the database (on MySQL a plain
TEXT column holds 64 KB: the window's 100 turns of long messages are more than that)."""

from __future__ import annotations

from tests.helpers import content, say
from wxbot.config import MAX_HISTORY_ROUNDS


def test_the_largest_window_of_long_messages_is_stored(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(history_rounds=MAX_HISTORY_ROUNDS)
    bot = app.extensions["wxbot.bot"]
    question = "我想问一下关于会员积分兑换的问题" * 40  # about 1.9 KB, a long WeChat message
    for _ in range(MAX_HISTORY_ROUNDS):
        reply = content(say(bot, "o_long", question))
        assert "系统开小差" not in reply and "出了点问题" not in reply, reply
    with app.app_context():
        from sqlalchemy import select

        from wxbot.models import Context

        with bot.engine.connect() as conn:
            stored = conn.execute(
                select(Context.__table__.c.history).where(Context.__table__.c.openid == "o_long")
            ).scalar_one()
    assert len(stored.encode("utf-8")) > 100_000  # the whole window, nothing cut
    assert stored.count(question) == MAX_HISTORY_ROUNDS
