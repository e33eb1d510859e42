"""Teaching by chat: 学习 → question → answer (→ 是/否 to overwrite), cancel, refusal."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.helpers import content, event, say, text
from wxbot.dialog.handlers import learn, query
from wxbot.models import Context
from wxbot.qa.models import KbEntry, KbQuestion

ADMIN = "o_teacher"
USER = "o_student"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_openids=frozenset({ADMIN}))


def state_of(app, openid: str) -> str:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return conn.execute(select(Context.state).where(Context.openid == openid)).scalar_one()


def entry_count(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return conn.execute(select(func.count()).select_from(KbEntry)).scalar_one()


def teach(bot, question: str, answer: str, openid: str = ADMIN) -> str:  # type: ignore[no-untyped-def]
    assert content(say(bot, openid, "学习")) == learn.ASK_QUESTION
    assert "请发送它的答案" in content(say(bot, openid, question))
    return content(say(bot, openid, answer))


def test_teach_a_new_pair_then_anyone_gets_the_answer(app, bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, USER, "周末有人值班吗")).startswith(query.DONT_KNOW)
    reply = teach(bot, "周末有人值班吗", "周末 10:00-18:00 有同事值班。")
    assert reply.startswith("学会了") and "周末 10:00-18:00" in reply
    assert state_of(app, ADMIN) == "WAIT_QUERY"
    assert content(say(bot, USER, "周末有人值班吗？")) == "周末 10:00-18:00 有同事值班。"
    with app.extensions["wxbot.engine"].connect() as conn:
        row = conn.execute(select(KbEntry.__table__)).one()
    assert (row.source, row.taught_by) == ("chat", ADMIN)


def test_states_along_the_way(app, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, ADMIN, "teach")
    assert state_of(app, ADMIN) == learn.WAIT_LEARN
    say(bot, ADMIN, "问题一")
    assert state_of(app, ADMIN) == learn.WAIT_LEARN
    say(bot, ADMIN, "答案一")
    assert state_of(app, ADMIN) == "WAIT_QUERY"


def test_overwrite_an_existing_answer_with_yes(app, bot) -> None:  # type: ignore[no-untyped-def]
    teach(bot, "发货地在哪", "上海。")
    assert content(say(bot, ADMIN, "学习")) == learn.ASK_QUESTION
    assert "已经有答案" in content(say(bot, ADMIN, "发货地在哪？"))  # same question, normalised
    reply = content(say(bot, ADMIN, "杭州。"))
    assert "已经有答案" in reply and "上海。" in reply and "「是」" in reply
    assert state_of(app, ADMIN) == learn.WAIT_CONFIRM
    assert content(say(bot, ADMIN, "是")).startswith("已更新")
    assert content(say(bot, USER, "发货地在哪")) == "杭州。"
    assert entry_count(app) == 1


def test_keep_the_existing_answer_with_no(app, bot) -> None:  # type: ignore[no-untyped-def]
    teach(bot, "发货地在哪", "上海。")
    assert "是否覆盖" not in teach(bot, "发货地在哪", "杭州。")
    assert content(say(bot, ADMIN, "否")) == learn.KEPT
    assert content(say(bot, USER, "发货地在哪")) == "上海。"


def test_confirm_asks_again_on_anything_else(app, bot) -> None:  # type: ignore[no-untyped-def]
    teach(bot, "发货地在哪", "上海。")
    teach(bot, "发货地在哪", "杭州。")
    assert content(say(bot, ADMIN, "也许吧")) == learn.ASK_YES_NO
    assert state_of(app, ADMIN) == learn.WAIT_CONFIRM
    assert content(say(bot, ADMIN, "yes")).startswith("已更新")


def test_same_answer_again_changes_nothing(app, bot) -> None:  # type: ignore[no-untyped-def]
    teach(bot, "发货地在哪", "上海。")
    assert "不用再学" in teach(bot, "发货地在哪", "上海。")
    assert state_of(app, ADMIN) == "WAIT_QUERY"


@pytest.mark.parametrize("step", [1, 2, 3])
def test_cancel_at_any_step_stores_nothing(app, bot, step: int) -> None:  # type: ignore[no-untyped-def]
    if step == 3:  # at the overwrite question
        teach(bot, "发货地在哪", "上海。")
    before = entry_count(app)
    say(bot, ADMIN, "学习")
    if step >= 2:
        say(bot, ADMIN, "发货地在哪")
    if step >= 3:
        say(bot, ADMIN, "杭州。")
        assert state_of(app, ADMIN) == learn.WAIT_CONFIRM
    assert "取消" in content(say(bot, ADMIN, "取消"))
    assert state_of(app, ADMIN) == "WAIT_QUERY"
    assert entry_count(app) == before
    if step == 3:
        assert content(say(bot, USER, "发货地在哪")) == "上海。"


def test_others_are_refused(app, bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, USER, "学习")) == learn.REFUSED
    assert state_of(app, USER) == "WAIT_QUERY"
    assert entry_count(app) == 0


def test_everyone_may_teach_when_the_policy_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(teach_policy="everyone")
    bot = app.extensions["wxbot.bot"]
    assert teach(bot, "食堂几点开饭", "11:30。", openid=USER).startswith("学会了")


def test_bad_questions_and_answers_are_asked_again(app, bot) -> None:  # type: ignore[no-untyped-def]
    # (failures add up over the whole flow: three end it, see the next test)
    say(bot, ADMIN, "学习")
    assert "没有文字" in content(say(bot, ADMIN, "？？？"))
    assert "太长" in content(say(bot, ADMIN, "问" * 501))
    assert state_of(app, ADMIN) == learn.WAIT_LEARN
    say(bot, ADMIN, "正常的问题")
    assert entry_count(app) == 0
    assert content(say(bot, ADMIN, "正常的答案")).startswith("学会了")
    say(bot, ADMIN, "学习")
    say(bot, ADMIN, "另一个问题")
    assert "太长" in content(say(bot, ADMIN, "答" * 10_001))
    assert "文字" in content(bot.handle(text(ADMIN, "")))  # e.g. a voice message not recognised
    assert entry_count(app) == 1


def test_too_many_failures_hand_over_to_a_human(app, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, ADMIN, "学习")
    replies = [say(bot, ADMIN, "？？？") for _ in range(3)]
    assert replies[-1].kind == "transfer"
    assert state_of(app, ADMIN) == "WAIT_QUERY"


def test_unsubscribe_forgets_who_taught(app, bot) -> None:  # type: ignore[no-untyped-def]
    teach(bot, "发货地在哪", "上海。")
    bot.handle(event(ADMIN, "unsubscribe"))
    with app.extensions["wxbot.engine"].connect() as conn:
        row = conn.execute(select(KbEntry.taught_by)).one()
        questions = conn.execute(select(func.count()).select_from(KbQuestion)).scalar_one()
    assert row.taught_by is None and questions == 1  # the knowledge stays
