"""Review of the dialogue: what users felt (teaching interrupted by LOCATION reports, pages
lost to a menu link, pages cut inside a link or an emoji). SQLite and MySQL where stored."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from tests.helpers import content, event, say
from wxbot.dialog import words
from wxbot.dialog.engine import Bot
from wxbot.dialog.flow import Outcome, Turn
from wxbot.dialog.handlers import learn
from wxbot.dialog.paging import paginate
from wxbot.dialog.states import build_table
from wxbot.messages.replies import Silent, Text
from wxbot.models import Context

ADMIN = "o_review_admin"
LONG = "长" * 1000 + "\n" + "文" * 1000
FOOTER = re.compile(r"\n[（(][^\n]*[）)]$")  # the page footer, in any language


def _long_answer(turn: Turn) -> Outcome | None:
    return Outcome(Text(LONG)) if turn.text == "长文" else None


@pytest.fixture
def rbot(make_app, clock):  # type: ignore[no-untyped-def]
    app = make_app(admin_openids=frozenset({ADMIN}))
    table = build_table()
    table.routers.insert(0, _long_answer)
    base = app.extensions["wxbot.bot"]
    bot = Bot(base.engine, base.settings, base.deps, table=table, clock=clock)
    yield bot
    bot.close()  # (its counts are written while its database is still there)


def _row(bot: Bot, openid: str):  # type: ignore[no-untyped-def]
    with bot.engine.connect() as conn:
        return conn.execute(select(Context.__table__).where(Context.openid == openid)).one()


def _location_report(openid: str):  # type: ignore[no-untyped-def]
    return event(openid, "location", latitude=39.9, longitude=116.4)


# --- teaching while WeChat reports the user's location every few seconds -------------------


def test_location_reports_while_teaching_are_ignored(rbot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(rbot, ADMIN, "学习")) == learn.ASK_QUESTION
    for _ in range(rbot.settings.max_attempts + 1):
        assert rbot.handle(_location_report(ADMIN)) == Silent()
    row = _row(rbot, ADMIN)
    assert (row.state, row.attempts) == (learn.WAIT_LEARN, 0)
    assert "请发送它的答案" in content(say(rbot, ADMIN, "周末有人值班吗"))
    assert rbot.handle(_location_report(ADMIN)) == Silent()
    assert content(say(rbot, ADMIN, "有。")).startswith("学会了")


def test_location_reports_while_confirming_are_ignored(rbot) -> None:  # type: ignore[no-untyped-def]
    for answer in ("上海。", "杭州。"):
        say(rbot, ADMIN, "学习")
        say(rbot, ADMIN, "发货地在哪")
        say(rbot, ADMIN, answer)
    assert _row(rbot, ADMIN).state == learn.WAIT_CONFIRM
    for _ in range(rbot.settings.max_attempts + 1):
        assert rbot.handle(_location_report(ADMIN)) == Silent()
    assert _row(rbot, ADMIN).state == learn.WAIT_CONFIRM
    assert content(say(rbot, ADMIN, "是")).startswith("已更新")


# --- events between the pages of a long answer --------------------------------------------


@pytest.mark.parametrize(
    "interlude",
    [
        lambda openid: event(openid, "view", "https://example.com/menu"),
        _location_report,
        lambda openid: event(openid, "templatesendjobfinish"),
    ],
    ids=["view", "location", "template"],
)
def test_events_keep_the_unread_pages(rbot, interlude) -> None:  # type: ignore[no-untyped-def]
    first = content(say(rbot, "u1", "长文"))
    assert "继续" in first
    assert rbot.handle(interlude("u1")) == Silent()
    second = content(say(rbot, "u1", "继续"))
    assert second != words.NO_MORE_PAGES and "第2/" in second


def test_unanswered_events_stay_out_of_the_history(rbot) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "你好")
    before = json.loads(_row(rbot, "u1").history)
    for _ in range(3):
        rbot.handle(_location_report("u1"))
    rbot.handle(event("u1", "view", "https://example.com/menu"))
    assert json.loads(_row(rbot, "u1").history) == before


# --- where pages end ---------------------------------------------------------------------


def _bodies(pages: list[str]) -> list[str]:
    return [FOOTER.sub("", p) for p in pages]


@pytest.mark.parametrize("lead", range(600, 700, 3))
def test_pages_never_cut_a_url(lead: int) -> None:
    url = "https://example.com/help/" + "a" * 60 + "?x=1"
    pages = paginate("说" * lead + "详见 " + url + " 。" + "说" * 300, 2000)
    assert len(pages) == 2
    assert any(url in p for p in pages)
    assert all(len(p.encode()) <= 2000 for p in pages)


@pytest.mark.parametrize("lead", range(600, 700, 3))
def test_pages_never_cut_a_text_link(lead: int) -> None:
    link = '<a href="https://example.com/help">点这里查看帮助</a>'
    pages = paginate("说" * lead + link + "说" * 300, 2000)
    assert any(link in p for p in pages)


@pytest.mark.parametrize(
    "emoji",
    ["👨\u200d👩\u200d👧", "🇨🇳", "👍🏽", "❤️", "1️⃣"],
    ids=["zwj-family", "flag", "skin-tone", "variation", "keycap"],
)
def test_pages_never_cut_an_emoji(emoji: str) -> None:
    for lead in range(600, 680):
        text = "说" * lead + emoji * 40
        bodies = _bodies(paginate(text, 2000))
        assert "".join(bodies) == text
        for body in bodies:
            assert body.replace(emoji, "").strip("说") == "", (lead, body[-12:])


def test_english_pages_end_between_words() -> None:
    text = " ".join(["information"] * 400)
    bodies = _bodies(paginate(text, 2000, "en"))
    assert len(bodies) > 1
    assert all(w == "information" for body in bodies for w in body.split())
    assert "".join(bodies) == text


# --- 「还在处理中，请稍后发送任意消息获取结果」: a promise that outlives the session --------------


def test_a_late_result_is_delivered_after_the_context_expired(rbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "你好")
    rbot.resumer.queue_late("u1", Text("结果：多云"))  # what the slow path does once WeChat gave up
    clock.advance(rbot.settings.session_ttl + 60)  # the user comes back a quarter-hour later
    reply = content(say(rbot, "u1", "你好"))
    assert reply.startswith(words.LATE_RESULT) and "结果：多云" in reply
    assert "多云" not in content(say(rbot, "u1", "你好"))  # delivered once


def test_clean_up_keeps_a_context_holding_a_late_result_for_a_day(rbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "你好")
    say(rbot, "u2", "你好")
    rbot.resumer.queue_late("u1", Text("结果：多云"))
    clock.advance(rbot.settings.session_ttl + 60)
    assert rbot.clean_up()[0] == 1  # u2's context went, u1's still owes a result
    assert "结果：多云" in content(say(rbot, "u1", "你好"))
    rbot.resumer.queue_late("u1", Text("结果：小雨"))
    clock.advance(rbot.settings.session_ttl + 2 * 86_400)
    assert rbot.clean_up()[0] == 1  # not forever
