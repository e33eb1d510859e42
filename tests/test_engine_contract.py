"""The dialogue engine's contract, run unchanged on SQLite and MySQL (see conftest.db_url)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import content, event, say, text
from wxbot.dialog import words
from wxbot.dialog.engine import Bot
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.dialog.states import build_table
from wxbot.messages.replies import Music, Silent, Text, TransferToHuman
from wxbot.models import Context, SeenMessage

STEP = "WAIT_TEST_STEP"


def _start(turn: Turn) -> Outcome | None:
    if turn.text == "开始":
        return Outcome(Text("请输入数字"), STEP, slots={"n": 0})
    if turn.text == "长文":
        return Outcome(Text("长" * 2000))
    if turn.text == "出错":
        raise RuntimeError("boom")
    if turn.text == "慢":
        return Outcome(
            Text("稍等"),
            "WAIT_QUERY",
            deferred=Deferred(work=turn.deps.services["work"], resume=_resume),
        )
    return None


def _resume(turn: Turn, result: object) -> Outcome:
    if isinstance(result, Exception):
        return Outcome(Text("服务不可用"))
    return Outcome(Text(f"结果：{result}"))


def _step(turn: Turn) -> Outcome:
    if not turn.text.isdigit():
        return Outcome(Text("要数字"), STEP, slots=turn.slots, failed=True)
    total = turn.slots["n"] + int(turn.text)
    if total >= 100:
        return Outcome(Text(f"完成 {total}"), WAIT_QUERY)
    return Outcome(Text(f"累计 {total}"), STEP, slots={"n": total})


@pytest.fixture
def make_bot(make_app, clock):  # type: ignore[no-untyped-def]
    bots: list[Bot] = []

    def build(**overrides):  # type: ignore[no-untyped-def]
        app = make_app(**overrides)
        table = build_table()
        table.handlers[STEP] = _step
        table.routers.insert(0, _start)
        base = app.extensions["wxbot.bot"]
        bot = Bot(base.engine, base.settings, base.deps, table=table, clock=clock)
        bot.deps.services = {}
        bots.append(bot)
        return bot

    yield build
    for bot in bots:  # before make_app's teardown drops the database: their counts are written
        bot.close()


@pytest.fixture
def tbot(make_bot):  # type: ignore[no-untyped-def]
    return make_bot()


def _ctx(bot: Bot, openid: str):  # type: ignore[no-untyped-def]
    with bot.engine.connect() as conn:
        return conn.execute(select(Context.__table__).where(Context.openid == openid)).first()


def _seen_count(bot: Bot) -> int:
    with bot.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(SeenMessage.__table__)).scalar_one()


def test_multi_step_flow_keeps_slots_between_messages(tbot):  # type: ignore[no-untyped-def]
    assert content(say(tbot, "u1", "开始")) == "请输入数字"
    assert content(say(tbot, "u1", "40")) == "累计 40"
    assert content(say(tbot, "u1", "70")) == "完成 110"
    row = _ctx(tbot, "u1")
    assert row.state == WAIT_QUERY and row.rounds == 0


def test_users_do_not_share_context(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "a", "开始")
    say(tbot, "a", "10")
    assert content(say(tbot, "b", "10")) != "累计 10"  # b is not in a's flow
    assert content(say(tbot, "a", "5")) == "累计 15"


def test_retry_gets_identical_reply_and_changes_nothing(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    msg = text("u1", "30")
    first = tbot.handle(msg)
    version = _ctx(tbot, "u1").version
    assert tbot.handle(msg) == first
    assert tbot.handle(msg) == first
    assert _ctx(tbot, "u1").version == version
    assert content(say(tbot, "u1", "1")) == "累计 31"  # counted once, not three times


def test_emoji_survive_storage(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "你好😀🎉")
    history = json.loads(_ctx(tbot, "u1").history)
    assert history[0] == ["user", "你好😀🎉"]


def test_cancel_leaves_waiting_state(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    assert content(say(tbot, "u1", "取消")) == words.CANCELLED
    assert _ctx(tbot, "u1").state == WAIT_QUERY
    assert content(say(tbot, "u1", "Cancel")) == words.NOTHING_TO_CANCEL


def test_human_hands_off_and_resets(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    assert isinstance(say(tbot, "u1", "人工"), TransferToHuman)
    assert _ctx(tbot, "u1").state == WAIT_QUERY


def test_expired_waiting_context_is_cancelled_with_notice(tbot, clock):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    clock.advance(601)
    reply = content(say(tbot, "u1", "50"))
    assert reply.startswith(words.TIMED_OUT)
    assert "累计" not in reply
    assert _ctx(tbot, "u1").state == WAIT_QUERY


def test_context_within_ttl_is_kept(tbot, clock):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    clock.advance(599)
    assert content(say(tbot, "u1", "50")) == "累计 50"


def test_attempt_limit_hands_off(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    assert content(say(tbot, "u1", "x")) == "要数字"
    assert content(say(tbot, "u1", "y")) == "要数字"
    assert isinstance(say(tbot, "u1", "z"), TransferToHuman)
    assert _ctx(tbot, "u1").state == WAIT_QUERY


def test_round_limit_hands_off(make_bot):  # type: ignore[no-untyped-def]
    bot = make_bot(max_rounds=4)
    say(bot, "u1", "开始")  # round 1
    for _ in range(2):  # rounds 2, 3
        assert content(say(bot, "u1", "1")).startswith("累计")
    assert isinstance(say(bot, "u1", "1"), TransferToHuman)  # round 4: still unfinished
    assert _ctx(bot, "u1").state == WAIT_QUERY


def test_max_sessions_refuses_new_users_but_not_existing(make_bot, clock):  # type: ignore[no-untyped-def]
    bot = make_bot(max_sessions=2)
    say(bot, "a", "你好")
    say(bot, "b", "你好")
    assert content(say(bot, "c", "你好")) == words.BUSY
    assert _ctx(bot, "c") is None
    assert content(say(bot, "a", "开始")) == "请输入数字"  # existing users carry on
    clock.advance(601)  # a and b expire: the newcomer evicts them
    assert content(say(bot, "c", "开始")) == "请输入数字"
    assert _ctx(bot, "b") is None


def test_sessions_cleanup_deletes_expired_contexts_and_old_dedup(tbot, clock):  # type: ignore[no-untyped-def]
    for user in ("a", "b", "c"):
        say(tbot, user, "你好")
    clock.advance(300)
    say(tbot, "d", "你好")
    clock.advance(400)
    assert tbot.clean_up(batch=2) == (3, 0)
    assert _ctx(tbot, "d") is not None
    clock.advance(86_400)
    assert tbot.clean_up() == (1, 4)
    assert _seen_count(tbot) == 0


def test_long_answer_is_paged_with_more(tbot):  # type: ignore[no-untyped-def]
    first = content(say(tbot, "u1", "长文"))
    assert len(first.encode()) <= 2000 and "继续" in first
    pages = [first]
    while "完）" not in pages[-1]:
        page = content(say(tbot, "u1", "继续"))
        assert len(page.encode()) <= 2000
        pages.append(page)
    assert sum(p.count("长") for p in pages) == 2000
    assert content(say(tbot, "u1", "继续")) == words.NO_MORE_PAGES  # not a question to log


def test_failure_rolls_back_and_apologises(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    before = _ctx(tbot, "u1")
    msg = text("u1", "出错")
    tbot.table.handlers[STEP] = lambda turn: (_ for _ in ()).throw(RuntimeError("db down"))
    assert content(tbot.handle(msg)) == words.APOLOGY
    after = _ctx(tbot, "u1")
    assert after.version == before.version and after.state == STEP
    tbot.table.handlers[STEP] = _step
    assert content(tbot.handle(text("u1", "7"))) == "累计 7"


def test_subscribe_welcomes_and_unsubscribe_forgets(tbot):  # type: ignore[no-untyped-def]
    assert content(tbot.handle(event("u1", "subscribe"))) == tbot.settings.welcome
    say(tbot, "u1", "开始")
    assert isinstance(tbot.handle(event("u1", "unsubscribe")), Silent)
    assert _ctx(tbot, "u1") is None
    assert _seen_count(tbot) == 0


def test_unrequested_events_are_silent_and_change_nothing(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    assert isinstance(tbot.handle(event("u1", "view", "https://example.com")), Silent)
    row = _ctx(tbot, "u1")
    assert row.state == STEP and row.rounds == 1


def test_click_menu_key_acts_as_text(tbot):  # type: ignore[no-untyped-def]
    assert content(tbot.handle(event("u1", "click", "开始"))) == "请输入数字"


def test_history_keeps_last_rounds(make_bot):  # type: ignore[no-untyped-def]
    bot = make_bot(history_rounds=2)
    for i in range(5):
        say(bot, "u1", f"问题{i}")
    history = json.loads(_ctx(bot, "u1").history)
    assert [h[1] for h in history if h[0] == "user"] == ["问题3", "问题4"]


def test_concurrent_messages_of_one_user_are_serialised(tbot):  # type: ignore[no-untyped-def]
    say(tbot, "u1", "开始")
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            tbot.handle(text("u1", "1"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert content(say(tbot, "u1", "0")) == "累计 7"


def test_deferred_work_answers_in_time(tbot):  # type: ignore[no-untyped-def]
    tbot.deps.services["work"] = lambda: "晴"
    assert content(say(tbot, "u1", "慢")) == "结果：晴"


def test_deferred_failure_becomes_friendly_reply(tbot):  # type: ignore[no-untyped-def]
    def fail() -> str:
        raise ConnectionError("down")

    tbot.deps.services["work"] = fail
    assert content(say(tbot, "u1", "慢")) == "服务不可用"


def test_slow_work_answered_on_retry_then_late_delivery(make_bot):  # type: ignore[no-untyped-def]
    bot = make_bot(reply_deadline=0.2)
    release = threading.Event()
    bot.deps.services["work"] = lambda: release.wait(10) and "多云"
    msg = text("u1", "慢")
    first: list[object] = []
    worker = threading.Thread(target=lambda: first.append(bot.handle(msg)))
    worker.start()
    # WeChat's second and third deliveries while the work is still running
    second = threading.Thread(target=lambda: first.append(("second", bot.handle(msg))))
    second.start()
    import time

    time.sleep(0.4)
    third = bot.handle(msg)  # the last delivery: nothing ready yet
    assert content(third) == words.STILL_WORKING
    release.set()
    worker.join(10)
    second.join(10)
    assert Text("结果：多云") in first  # the held first request got it (WeChat had gone)
    # the result waits for the user's next message
    reply = content(say(bot, "u1", "你好"))
    assert "结果：多云" in reply and reply.startswith(words.LATE_RESULT)
    assert "结果：多云" not in content(say(bot, "u1", "你好"))


def test_news_and_music_replies_round_trip_through_dedup(tbot):  # type: ignore[no-untyped-def]
    tbot.table.routers.insert(
        0,
        lambda turn: (
            Outcome(Music("晴天", "周杰伦", "http://m/1.mp3")) if turn.text == "歌" else None
        ),
    )
    msg = text("u1", "歌")
    assert tbot.handle(msg) == Music("晴天", "周杰伦", "http://m/1.mp3")
    assert tbot.handle(msg) == Music("晴天", "周杰伦", "http://m/1.mp3")


def test_dialogue_table_is_validated_at_start_up(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wxbot.dialog.handlers import music
    from wxbot.dialog.states import DialogueTableError
    from wxbot.flows import load_flows
    from wxbot.flows.runner import FlowRunner

    table = build_table(extra=[FlowRunner(load_flows().flows)])  # phone binding is a flow file
    for state in (
        "WAIT_QUERY",
        "WAIT_LEARN",
        "WAIT_CONFIRM",
        "WAIT_WEATHER_CITY",
        "WAIT_MUSIC_INFO",
        "WAIT_PHONE_NUMBER",
        "WAIT_PHONE_CODE",
    ):
        assert table.is_known(state)
    monkeypatch.setattr(music, "WAIT_MUSIC_ORPHAN", "WAIT_MUSIC_ORPHAN", raising=False)
    with pytest.raises(DialogueTableError, match="WAIT_MUSIC_ORPHAN"):
        build_table()


def test_unknown_next_state_rolls_back_with_apology(tbot):  # type: ignore[no-untyped-def]
    tbot.table.routers.insert(
        0, lambda turn: Outcome(Text("x"), "WAIT_NOWHERE") if turn.text == "坏" else None
    )
    assert content(say(tbot, "u1", "坏")) == words.APOLOGY
    assert _ctx(tbot, "u1") is None  # the new user's context insert was rolled back too
