"""Slow work a stopping process gave up on (past its drain: a deploy, a reload) is owned up to by
push, like lost work, where WeChat's customer-service API is configured: the stopped process
cannot push, so the record is left for the lost-work look of the processes that stay (or of
the same app after its restart), which pushes the apology at once, not minutes later. Exactly
one push per job across processes; none when the user's next message came first (it carried
the apology), none for work whose user was never told to wait; a refused push leaves the
apology for the next message; the user's language. SQLite and MySQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, text
from tests.test_restarts_drain import _gated_bot, last_delivery
from tests.test_slow_path import wait_for
from wxbot.dialog import lost_work, words
from wxbot.i18n import translate
from wxbot.messages.replies import Withheld
from wxbot.models import SeenMessage

APOLOGY = translate(words.APOLOGY, "zh")
LOST = translate(words.WORK_LOST, "zh")
STILL_WORKING = translate(words.STILL_WORKING, "zh")


@pytest.fixture
def push_app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    def build(**extra: Any):  # type: ignore[no-untyped-def]
        return make_app(**fake_apis.settings(reply_deadline=0.3, appsecret=APPSECRET, **extra))

    return build


@pytest.fixture
def gate() -> Any:
    gate = threading.Event()
    yield gate
    gate.set()  # the held work ends with the test


def _stopping(app: Any, gate: threading.Event, clock: Any, *openids: str) -> Any:
    """Each user's slow work is under way and they were told 「还在处理中」 (WeChat's last
    delivery); then the process stops and gives up on the work past its (short) drain."""
    bot = _gated_bot(app, gate)
    for openid in openids or ("u1",):
        assert content(bot.handle(last_delivery(clock, openid, "慢"))) == STILL_WORKING
    bot.slow.close(0.3)
    return bot


def test_work_a_stop_gave_up_on_is_pushed_by_a_process_that_stays(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    stopped = _stopping(push_app(), gate, clock)
    assert fake_apis.pushed == []  # the stopping process pushes nothing itself
    staying = push_app().extensions["wxbot.bot"]
    say(
        staying, "u2", "你好"
    )  # any message prompts the look: no wait for the work to count as lost
    wait_for(lambda: len(fake_apis.pushed) == 1)
    assert fake_apis.pushed[0]["touser"] == "u1"
    assert fake_apis.pushed[0]["text"]["content"] == APOLOGY
    # told: the next message says nothing more, then or later, and nothing is pushed again
    reply = content(say(staying, "u1", "你好"))
    assert APOLOGY not in reply and LOST not in reply, reply
    gate.set()  # the work comes back in the stopped process after all: dropped
    clock.advance(stopped.lost_work.lost_after + lost_work.LOOK_EVERY + 1)
    assert staying.lost_work.look() == 0
    reply = content(say(staying, "u1", "你好"))
    assert APOLOGY not in reply and LOST not in reply, reply
    assert len(fake_apis.pushed) == 1


def test_the_same_app_pushes_it_after_its_restart(push_app, fake_apis, clock, gate) -> None:  # type: ignore[no-untyped-def]
    _stopping(push_app(), gate, clock)
    restarted = push_app().extensions["wxbot.bot"]  # the only process, started again
    assert restarted.lost_work.look() == 1
    assert [p["touser"] for p in fake_apis.pushed] == ["u1"]


def test_two_processes_looking_at_once_push_each_apology_once(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    _stopping(push_app(), gate, clock, "u1", "u2", "u3")
    first, second = (push_app().extensions["wxbot.bot"] for _ in range(2))
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


def test_the_pushed_apology_is_in_the_users_language(push_app, fake_apis, clock, gate) -> None:  # type: ignore[no-untyped-def]
    app = push_app()
    say(app.extensions["wxbot.bot"], "u1", "language en")
    bot = _gated_bot(app, gate)
    msg = last_delivery(clock, "u1", "慢")
    assert content(bot.handle(msg)) == translate(words.STILL_WORKING, "en")
    bot.slow.close(0.3)
    staying = push_app().extensions["wxbot.bot"]
    assert staying.lost_work.look() == 1
    assert fake_apis.pushed[0]["text"]["content"] == translate(words.APOLOGY, "en")
    # a WeChat delivery arriving this late (it does not) gets the apology, not the work
    assert content(staying.handle(msg)) == translate(words.APOLOGY, "en")


def test_a_refused_push_leaves_the_apology_for_the_next_message(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    _stopping(push_app(), gate, clock)
    fake_apis.errcode_always["send"] = 45015  # the user has not written for 48 hours
    staying = push_app().extensions["wxbot.bot"]
    assert staying.lost_work.look() == 0
    assert fake_apis.hits["send"] >= 1 and fake_apis.pushed == []  # tried, refused
    reply = content(say(staying, "u1", "你好"))
    assert reply.count(APOLOGY) == 1 and LOST not in reply, reply
    del fake_apis.errcode_always["send"]  # and not pushed later on top of it
    clock.advance(lost_work.LOOK_EVERY + 1)
    assert staying.lost_work.look() == 0
    assert fake_apis.pushed == []
    assert APOLOGY not in content(say(staying, "u1", "你好"))


def test_a_next_message_before_the_look_carries_the_apology_and_nothing_is_pushed(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    _stopping(push_app(), gate, clock)
    staying = push_app().extensions["wxbot.bot"]
    staying.lost_work._next_look = clock() + 3600  # its look is not due yet
    reply = content(say(staying, "u1", "你好"))
    assert reply.count(APOLOGY) == 1, reply
    assert staying.lost_work.look() == 0
    assert fake_apis.pushed == [] and fake_apis.hits["send"] == 0


def test_work_whose_user_was_not_told_to_wait_is_not_pushed(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    """WeChat's first delivery, held when the stop comes: the user was told nothing; WeChat's
    retry, at a container that stays, gets the apology from the dedup record."""
    bot = _gated_bot(push_app(), gate)
    msg = text("u1", "慢", create_time=int(clock()))
    bot.slow.begin_drain(0.5)
    assert isinstance(bot.handle(msg), Withheld)  # left for WeChat to deliver again
    bot.slow.close(0)
    staying = push_app().extensions["wxbot.bot"]
    assert staying.lost_work.look() == 0
    assert content(staying.handle(msg)) == APOLOGY
    assert fake_apis.pushed == []


def test_abandoned_work_counts_as_lost_only_with_an_appsecret(make_app, clock, gate) -> None:  # type: ignore[no-untyped-def]
    """No customer-service API: nobody looks; the apology waits for the next message, once."""
    _stopping(make_app(reply_deadline=0.3), gate, clock)
    other = make_app(reply_deadline=0.3).extensions["wxbot.bot"]
    assert other.lost_work.push is None
    reply = content(say(other, "u1", "你好"))
    assert reply.count(APOLOGY) == 1 and LOST not in reply, reply
    clock.advance(other.lost_work.lost_after + 1)
    assert APOLOGY not in content(say(other, "u1", "你好"))
    with other.engine.connect() as conn:  # none waits for a push that never comes
        assert "to_push" not in conn.execute(select(SeenMessage.status)).scalars().all()


def test_a_delivery_of_the_message_gets_the_apology_not_still_working(
    push_app, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    """WeChat delivers a message at most three times (the last one was told 「还在处理中」);
    one arriving anyway while the apology awaits its push is answered from the record."""
    app = push_app()
    bot = _gated_bot(app, gate)
    msg = last_delivery(clock, "u1", "慢")
    assert content(bot.handle(msg)) == STILL_WORKING
    bot.slow.close(0.3)
    staying = push_app().extensions["wxbot.bot"]
    staying.lost_work._next_look = clock() + 3600  # its look is not due yet
    assert content(staying.handle(msg)) == APOLOGY  # not marked late again


def test_work_given_up_on_long_ago_is_left_to_the_next_message(
    push_app, fake_apis, clock, gate
) -> None:  # type: ignore[no-untyped-def]
    """Every process was down for over an hour: an unprompted apology would puzzle; the
    record is marked done all the same (pruned with the others) and the next message says it."""
    _stopping(push_app(), gate, clock)
    clock.advance(lost_work.PUSH_WITHIN + 1)
    staying = push_app().extensions["wxbot.bot"]
    assert staying.lost_work.look() == 0
    assert fake_apis.hits["send"] == 0
    with staying.engine.connect() as conn:
        statuses = conn.execute(select(SeenMessage.status)).scalars().all()
    assert "to_push" not in statuses
    assert content(say(staying, "u1", "你好")).count(APOLOGY) == 1


def test_day_old_records_marked_to_push_are_pruned_like_the_others(make_app) -> None:  # type: ignore[no-untyped-def]
    """A record left TO_PUSH (the AppSecret removed right after a stop: no look claims it)
    still goes with the day-old dedup records."""
    from wxbot.db import transaction
    from wxbot.dialog import context as store

    bot = make_app().extensions["wxbot.bot"]
    with transaction(bot.engine) as conn:
        for key, status in (("old", store.TO_PUSH), ("older", store.DONE)):
            conn.execute(
                store.seen.insert().values(
                    dedup_key=key, openid="o_u", reply="{}", status=status, created_at=1.0
                )
            )
        assert store.prune_seen(conn, older_than=1000.0) == 2
        assert conn.execute(select(SeenMessage.dedup_key)).all() == []
