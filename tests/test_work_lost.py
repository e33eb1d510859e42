"""Slow work whose worker was killed (or whose resume failed) never comes back: the user, told
「还在处理中」, is told on their next message that it did not complete, instead of waiting for
nothing. Work that came back leaves no such notice. SQLite and MySQL."""

from __future__ import annotations

from typing import Any

from tests.helpers import content, say, text
from wxbot.dialog import words
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.dialog.slow import Pending, work_lost_after
from wxbot.i18n import translate
from wxbot.messages.replies import Text

LOST = translate(words.WORK_LOST, "zh")


def _slow_bot(app: Any) -> Any:
    bot = app.extensions["wxbot.bot"]

    def slow(turn: Turn) -> Outcome | None:
        if turn.text != "慢":
            return None
        resume = lambda _turn, result: Outcome(Text(str(result)))  # noqa: E731
        work = Deferred(work=lambda: "慢的结果", resume=resume)
        return Outcome(Text("稍等"), WAIT_QUERY, deferred=work)

    bot.table.routers.insert(0, slow)
    return bot


def test_work_lost_with_its_worker_is_owned_up_to_on_the_next_message(
    app, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(app)
    # The worker dies once phase one has committed: the job never runs, and WeChat's last
    # delivery, served by another worker, can only say it is still being worked on.
    monkeypatch.setattr(bot.slow, "start", lambda *_: Pending(future=None, attempts=3))
    assert content(bot.handle(text("u1", "慢"))) == translate(words.STILL_WORKING, "zh")
    monkeypatch.undo()
    clock.advance(60)
    assert LOST not in content(say(bot, "u1", "你好"))  # it may still come: not yet
    clock.advance(work_lost_after(bot.settings))
    reply = content(say(bot, "u1", "你好"))
    assert reply.startswith(LOST), reply
    assert LOST not in content(say(bot, "u1", "你好"))  # said once


def test_work_that_came_back_leaves_no_notice(app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(app)
    assert content(bot.handle(text("u1", "慢"))) == "慢的结果"
    clock.advance(work_lost_after(bot.settings) + 1)
    assert LOST not in content(say(bot, "u1", "你好"))


def test_the_longest_configured_timeouts_lengthen_the_wait(make_app) -> None:  # type: ignore[no-untyped-def]
    settings = make_app(llm_timeout=200.0).extensions["wxbot.bot"].settings
    assert work_lost_after(settings) > 3 * 200
