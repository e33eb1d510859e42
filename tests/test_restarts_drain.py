"""A stopping process and its slow work, in-process (SQLite and MySQL): what
tests/test_restarts.py shows with real signals, here with a held job and short drains.

- Work that finishes within the drain is delivered as usual; work still running at its end is
  given up on: the user gets the apology now (as the answer, or with their next message when
  told 「还在处理中」), not nothing and a lost-work notice minutes later; work coming back after
  that is dropped, not delivered twice.
- A request held on slow work when the stop clock runs out is left unanswered (HTTP 503), so
  WeChat delivers the message again to a container that stays (silence would end its retries).
- gunicorn's master runs the worker_exit hook too (for a worker that vanished): that must not
  stop the master's bot, which every later worker is forked from.
"""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace
from typing import Any

from tests.helpers import content, say, text
from tests.test_slow_path import Delivery, wait_for
from wxbot import serving
from wxbot.dialog import words
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.i18n import translate
from wxbot.messages.replies import Text, Withheld

STILL_WORKING = translate(words.STILL_WORKING, "zh")
APOLOGY = translate(words.APOLOGY, "zh")
LOST = translate(words.WORK_LOST, "zh")


def last_delivery(clock: Any, openid: str, words: str) -> Any:
    """WeChat's third delivery of a message (10 s old): slow work not done by the reply
    deadline is answered 「还在处理中」."""
    return text(openid, words, create_time=int(clock()) - 10)


def _gated_bot(app: Any, gate: threading.Event) -> Any:
    """「慢」 starts slow work that returns 「慢的结果」 once ``gate`` is set."""
    bot = app.extensions["wxbot.bot"]

    def slow(turn: Turn) -> Outcome | None:
        if turn.text != "慢":
            return None
        resume = lambda _turn, result: Outcome(Text(str(result)))  # noqa: E731
        work = Deferred(work=lambda: gate.wait(30) and "慢的结果", resume=resume)
        return Outcome(Text("稍等"), WAIT_QUERY, deferred=work)

    bot.table.routers.insert(0, slow)
    return bot


def test_a_stop_gives_up_on_work_past_the_drain_and_says_so(make_app, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    bot = _gated_bot(make_app(reply_deadline=0.3), gate)
    assert content(bot.handle(last_delivery(clock, "u1", "慢"))) == STILL_WORKING
    with caplog.at_level("INFO", logger="wxbot.dialog.slow"):
        bot.slow.close(0.5)
    assert "gave up on 1 slow job" in caplog.text and "u1" in caplog.text
    gate.set()  # the work comes back after all: too late, dropped
    time.sleep(0.3)
    reply = content(say(bot, "u1", "你好"))
    assert APOLOGY in reply and "慢的结果" not in reply and LOST not in reply, reply
    clock.advance(3600)  # and no lost-work notice later either
    assert LOST not in content(say(bot, "u1", "你好"))


def test_a_stop_lets_work_that_finishes_within_the_drain_deliver(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    bot = _gated_bot(make_app(reply_deadline=0.3), gate)
    assert content(bot.handle(last_delivery(clock, "u1", "慢"))) == STILL_WORKING
    threading.Timer(0.5, gate.set).start()
    started = time.monotonic()
    bot.slow.close(30)
    assert time.monotonic() - started < 20  # it came back: no need to wait for the drain
    reply = content(say(bot, "u1", "你好"))
    assert "慢的结果" in reply and APOLOGY not in reply, reply


def test_a_held_delivery_is_left_for_wechat_to_retry_when_the_stop_clock_runs_out(
    make_app, clock
) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    bot = _gated_bot(make_app(reply_deadline=0.3), gate)
    msg = text("u1", "慢", create_time=int(clock()))  # WeChat's first try
    first = Delivery(bot, msg)
    time.sleep(1.0)  # past the reply deadline: holding on for the retry's sake
    bot.slow.begin_drain(0.2)  # SIGTERM
    first.join(10)  # before: held for 15 s, then silence (WeChat's retries end)
    assert not first.is_alive()
    assert isinstance(first.reply, Withheld), first.reply
    bot.slow.close(0)
    # WeChat's retry, at a container that stays, is answered from the dedup record
    staying = make_app(reply_deadline=0.3).extensions["wxbot.bot"]
    assert content(staying.handle(msg)) == APOLOGY
    gate.set()


def test_the_masters_worker_exit_hook_leaves_its_bot_alone(make_app) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    gate.set()
    app = make_app(reply_deadline=5)
    bot = _gated_bot(app, gate)
    cfg = SimpleNamespace(graceful_timeout=25)
    vanished = SimpleNamespace(pid=os.getpid() + 1, wsgi=app, cfg=cfg)
    serving.worker_exit(SimpleNamespace(), vanished)  # in the master: not this process's worker
    # the workers forked from this master afterwards still run slow work
    assert content(bot.handle(text("u1", "慢"))) == "慢的结果"
    serving.worker_exit(SimpleNamespace(), SimpleNamespace(pid=os.getpid(), wsgi=app, cfg=cfg))
    wait_for(lambda: bot.slow._closed)
