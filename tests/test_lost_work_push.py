"""Slow work whose worker died is owned up to by push, where WeChat's customer-service API is
configured: the user told 「还在处理中」 hears within about a minute of the work counting as
lost, not only with their next message. Exactly once across processes; a refused push
leaves the notice for the next message. SQLite and MySQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, text
from tests.test_slow_path import wait_for
from tests.test_work_lost import _slow_bot
from wxbot.dialog import lost_work, words
from wxbot.dialog.slow import Pending
from wxbot.i18n import translate
from wxbot.models import SeenMessage

LOST = translate(words.WORK_LOST, "zh")


@pytest.fixture
def push_app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    def build(**extra: Any):  # type: ignore[no-untyped-def]
        settings = {"appsecret": APPSECRET, **extra}
        return make_app(**fake_apis.settings(reply_deadline=0.3, **settings))

    return build


def _worker_dies(bot: Any, monkeypatch: Any, openid: str = "u1", language: str = "zh") -> Any:
    """Phase one commits, then its worker dies: the job never runs, and WeChat's last
    delivery, served by another worker, says it is still being worked on."""
    monkeypatch.setattr(bot.slow, "start", lambda *_: Pending(future=None, attempts=3))
    msg = text(openid, "慢")
    assert content(bot.handle(msg)) == translate(words.STILL_WORKING, language)
    monkeypatch.undo()
    return msg


def _status(bot: Any, dedup_key: str) -> str | None:
    with bot.engine.connect() as conn:
        return conn.execute(
            select(SeenMessage.status).where(SeenMessage.dedup_key == dedup_key)
        ).scalar_one_or_none()


def test_lost_work_is_pushed_once_prompted_by_any_message(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    msg = _worker_dies(bot, monkeypatch)
    say(bot, "u2", "你好")  # a look, too early: the work may still come back
    clock.advance(30)
    assert bot.lost_work.look() == 0
    assert fake_apis.pushed == []
    clock.advance(bot.lost_work.lost_after)
    say(bot, "u2", "你好")  # another user's message prompts a look, in the background
    wait_for(lambda: len(fake_apis.pushed) == 1)
    pushed = fake_apis.pushed[0]
    assert pushed["touser"] == "u1" and pushed["text"]["content"] == LOST
    assert _status(bot, msg.dedup_key) == "done"
    # told already: the next message does not say it again, and nothing is pushed twice
    assert LOST not in content(say(bot, "u1", "你好"))
    clock.advance(lost_work.LOOK_EVERY + 1)
    say(bot, "u2", "你好")
    assert bot.lost_work.look() == 0
    assert len(fake_apis.pushed) == 1
    # a WeChat retry arriving this late (it does not) would get the apology, not the work
    assert content(bot.handle(msg)) == LOST


def test_one_look_a_minute_per_process(push_app, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    looks: list[int] = []
    monkeypatch.setattr(bot.lost_work, "look", lambda: looks.append(1) or 0)
    for _ in range(5):
        say(bot, "u2", "你好")
    wait_for(lambda: len(looks) == 1)
    clock.advance(lost_work.LOOK_EVERY + 1)
    say(bot, "u2", "你好")
    wait_for(lambda: len(looks) == 2)
    say(bot, "u2", "你好")
    assert len(looks) == 2


def test_a_refused_push_leaves_the_notice_for_the_next_message(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    fake_apis.down.add("send")
    _worker_dies(bot, monkeypatch)
    clock.advance(bot.lost_work.lost_after + 1)
    assert bot.lost_work.look() == 0
    assert fake_apis.pushed == []
    reply = content(say(bot, "u1", "你好"))
    assert reply.startswith(LOST), reply
    assert LOST not in content(say(bot, "u1", "你好"))  # said once


def test_two_processes_looking_at_once_push_once(push_app, fake_apis, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = _slow_bot(push_app())
    second = push_app().extensions["wxbot.bot"]  # another process on the same database
    for openid in ("u1", "u2", "u3"):
        _worker_dies(first, monkeypatch, openid)
    clock.advance(first.lost_work.lost_after + 1)
    counts: list[int] = []
    looks = [
        threading.Thread(target=lambda b=b: counts.append(b.lost_work.look()))
        for b in (first, second, first, second)
    ]
    for thread in looks:
        thread.start()
    for thread in looks:
        thread.join(30)
    assert sum(counts) == 3
    assert sorted(p["touser"] for p in fake_apis.pushed) == ["u1", "u2", "u3"]


def test_the_apology_is_in_the_users_language(push_app, fake_apis, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    say(bot, "u1", "language en")
    _worker_dies(bot, monkeypatch, language="en")
    clock.advance(bot.lost_work.lost_after + 1)
    assert bot.lost_work.look() == 1
    assert fake_apis.pushed[0]["text"]["content"] == translate(words.WORK_LOST, "en")


def test_work_lost_long_ago_is_left_to_the_next_message(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    _worker_dies(bot, monkeypatch)
    clock.advance(bot.lost_work.lost_after + lost_work.PUSH_WITHIN + 1)
    assert bot.lost_work.look() == 0
    assert fake_apis.pushed == []
    assert content(say(bot, "u1", "你好")).startswith(LOST)


def test_work_that_came_back_is_not_pushed(push_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    assert content(bot.handle(text("u1", "慢"))) == "慢的结果"
    clock.advance(bot.lost_work.lost_after + 1)
    assert bot.lost_work.look() == 0
    assert fake_apis.pushed == []


def test_lost_work_of_an_evicted_context_is_still_pushed(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    _worker_dies(bot, monkeypatch)
    clock.advance(bot.lost_work.lost_after + 1)
    bot.clean_up()  # the context expired (10 minutes) and is evicted; its record stays
    assert bot.lost_work.look() == 1
    assert fake_apis.pushed[0]["touser"] == "u1"


def test_without_an_appsecret_nobody_looks(make_app, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(make_app())
    assert bot.lost_work.push is None
    _worker_dies(bot, monkeypatch)
    clock.advance(bot.lost_work.lost_after + 1)
    monkeypatch.setattr(bot.lost_work, "look", lambda: pytest.fail("looked without a push"))
    reply = content(say(bot, "u1", "你好"))  # the next message owns up to it, as before
    assert reply.startswith(LOST), reply


def test_a_stopping_process_does_not_look(push_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(push_app())
    looks: list[int] = []
    monkeypatch.setattr(bot.lost_work, "look", lambda: looks.append(1) or 0)
    bot.slow.begin_drain(30)
    say(bot, "u2", "你好")
    assert bot.lost_work._next_look == 0.0  # no look was due-checked, none started
    assert looks == []


def test_lost_work_the_next_message_owned_up_to_is_not_pushed_too(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The user writes after the work counts as lost but before a look found it: their reply
    carried the notice; the look that follows (perhaps prompted by that very message) pushed it
    again."""
    bot = _slow_bot(push_app())
    msg = _worker_dies(bot, monkeypatch)
    clock.advance(bot.lost_work.lost_after + 1)
    bot.lost_work._next_look = clock() + 30  # this process's look is not due yet
    assert content(say(bot, "u1", "你好")).startswith(LOST)
    assert bot.lost_work.look() == 0
    assert fake_apis.pushed == [] and fake_apis.hits["send"] == 0
    assert _status(bot, msg.dedup_key) == "done"  # settled: no later look considers it


def test_lost_work_of_a_context_evicted_and_created_again_is_still_pushed(
    push_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The new context never knew of the work, so the user's message said nothing of it."""
    bot = _slow_bot(push_app())
    _worker_dies(bot, monkeypatch)
    clock.advance(bot.settings.session_ttl + 1)
    bot.clean_up()  # expired and evicted
    bot.lost_work._next_look = clock() + 30
    assert not content(say(bot, "u1", "你好")).startswith(LOST)
    assert bot.lost_work.look() == 1
    assert fake_apis.pushed[0]["touser"] == "u1"
