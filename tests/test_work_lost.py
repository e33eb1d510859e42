"""Slow work whose worker was killed (or whose resume failed) never comes back: the user, told
「还在处理中」, is told on their next message that it did not complete, instead of waiting for
nothing. Work that came back leaves no such notice. SQLite and MySQL."""

from __future__ import annotations

import threading
from typing import Any

from tests.helpers import content, say, text
from tests.test_slow_path import Delivery, deliveries_seen, wait_for
from wxbot.dialog import words
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.dialog.slow import Pending, work_lost_after
from wxbot.i18n import translate
from wxbot.messages.replies import Text

LOST = translate(words.WORK_LOST, "zh")
APOLOGY = translate(words.APOLOGY, "zh")


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


def _failing_resume_bot(app: Any, gate: threading.Event | None = None) -> Any:
    """「坏」 starts slow work whose resume raises (a handler's bug); ``gate`` holds the work."""
    bot = app.extensions["wxbot.bot"]

    def broken(turn: Turn) -> Outcome | None:
        if turn.text != "坏":
            return None

        def resume(_turn: Turn, _result: object) -> Outcome:
            raise RuntimeError("a bug in the handler")

        work = Deferred(work=lambda: gate.wait(10) if gate else None, resume=resume)
        return Outcome(Text("稍等"), WAIT_QUERY, deferred=work)

    bot.table.routers.insert(0, broken)
    return bot


def test_a_failed_resume_is_apologised_for_once(app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = _failing_resume_bot(app)
    assert content(bot.handle(text("u1", "坏"))) == APOLOGY
    clock.advance(work_lost_after(bot.settings) + 1)
    # the apology was the answer: the next message does not own up to it a second time
    assert LOST not in content(say(bot, "u1", "你好"))


def test_a_failed_resume_after_still_working_reaches_the_user_once(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    bot = _failing_resume_bot(make_app(reply_deadline=0.3), gate)
    msg = text("u1", "坏")
    first = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 1)
    second = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    assert content(bot.handle(msg)) == translate(words.STILL_WORKING, "zh")
    gate.set()
    first.join(10)
    second.join(10)
    clock.advance(work_lost_after(bot.settings) + 1)
    reply = content(say(bot, "u1", "你好"))  # before: nothing came, then only the notice
    assert APOLOGY in reply and LOST not in reply, reply
