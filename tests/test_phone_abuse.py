"""The limits on texting SMS codes (SMS bombing: texting someone else's number at the
operator's cost), through the engine on SQLite and MariaDB: failing three codes does not
reset the resend clock, daily caps per number and per user, a minimum interval per number
across users, a failed send that costs nothing, and the table's clean-up."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, inspect, select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from tests.phone_texts import phone as texts
from wxbot.db import make_engine, transaction
from wxbot.flows import messages as flow_texts
from wxbot.flows import phone
from wxbot.flows.template import render
from wxbot.i18n import translate
from wxbot.migrations.schema import alembic_config, upgrade
from wxbot.qa import writer
from wxbot.services.models import SmsCode, SmsQuota

PHONE = "13800138000"
MASKED = "138****8000"
DAY_SECONDS = 86_400
quotas = SmsQuota.__table__


@pytest.fixture
def pbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def number(i: int) -> str:
    return f"139{i:08d}"


def busy(seconds: int) -> str:
    return render(flow_texts.NUMBER_BUSY.singular, {"seconds": seconds})


def wrong(fake: FakeApis) -> str:
    return "000000" if fake.sms[-1]["code"] != "000000" else "111111"


def quota(bot: Any, scope: str, subject: str) -> Any:
    with bot.engine.connect() as conn:
        return conn.execute(
            select(quotas).where(quotas.c.scope == scope, quotas.c.subject == subject)
        ).first()


def code_row(bot: Any, openid: str) -> Any:
    with bot.engine.connect() as conn:
        return conn.execute(select(SmsCode.__table__).where(SmsCode.openid == openid)).first()


# --- failing three codes does not reset the resend clock ------------------------------------


def test_three_wrong_codes_then_starting_again_does_not_text_within_the_minute(
    pbot, fake_apis, clock
) -> None:  # type: ignore[no-untyped-def]
    """Three wrong codes dropped the code's row, and with it the time of the last send: the
    next 「绑定手机 <number>」 texted at once, as often as the loop ran."""
    assert content(say(pbot, "u1", f"绑定手机 {PHONE}")) == texts.SENT.format(phone=MASKED)
    for _ in range(3):
        reply = content(say(pbot, "u1", wrong(fake_apis)))
    assert reply == texts.TOO_MANY
    clock.advance(10)
    reply = content(say(pbot, "u1", f"绑定手机 {PHONE}"))
    assert reply == texts.WAIT_RESEND.format(seconds=50)
    assert len(fake_apis.sms) == 1
    assert state_of(pbot, "u1")[0] == "WAIT_PHONE_CODE"
    clock.advance(20)
    assert content(say(pbot, "u1", "重发")) == texts.WAIT_RESEND.format(seconds=30)
    assert len(fake_apis.sms) == 1
    clock.advance(30)  # the minute is over: 「重发」 texts a new code, which verifies
    assert content(say(pbot, "u1", "重发")) == texts.SENT.format(phone=MASKED)
    assert len(fake_apis.sms) == 2
    assert content(say(pbot, "u1", fake_apis.sms[-1]["code"])) == texts.BOUND.format(phone=MASKED)


def test_a_code_typed_while_held_back_is_told_to_ask_again(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", f"绑定手机 {PHONE}")
    for _ in range(3):
        say(pbot, "u1", wrong(fake_apis))
    say(pbot, "u1", f"绑定手机 {PHONE}")
    assert content(say(pbot, "u1", "123456")) == texts.EXPIRED  # no code to guess at
    assert code_row(pbot, "u1").tries == 0


# --- daily caps -------------------------------------------------------------------------------


def test_one_number_gets_at_most_its_daily_cap_from_many_users(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    for i in range(phone.NUMBER_DAILY):
        reply = content(say(pbot, f"u{i}", f"绑定手机 {PHONE}"))
        assert reply == texts.SENT.format(phone=MASKED)
        clock.advance(60)
    late = f"u{phone.NUMBER_DAILY}"
    assert content(say(pbot, late, f"绑定手机 {PHONE}")) == flow_texts.NUMBER_DAILY_LIMIT
    assert state_of(pbot, late)[0] == "WAIT_QUERY"  # the flow ended: nothing to wait for
    assert len(fake_apis.sms) == phone.NUMBER_DAILY
    # a resend at the cap keeps the user at the code step: the code sent before still works
    last = f"u{phone.NUMBER_DAILY - 1}"
    code = fake_apis.sms[-1]["code"]
    assert content(say(pbot, last, "重发")) == flow_texts.NUMBER_DAILY_LIMIT
    assert state_of(pbot, last)[0] == "WAIT_PHONE_CODE"
    assert content(say(pbot, last, code)) == texts.BOUND.format(phone=MASKED)
    assert len(fake_apis.sms) == phone.NUMBER_DAILY
    clock.advance(DAY_SECONDS)  # the next day: its count starts again
    assert content(say(pbot, late, f"绑定手机 {PHONE}")) == texts.SENT.format(phone=MASKED)
    assert quota(pbot, phone.NUMBER, PHONE).sends == 1


def test_one_user_gets_at_most_its_daily_cap_across_numbers(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    for i in range(phone.USER_DAILY):
        reply = content(say(pbot, "u1", f"绑定手机 {number(i)}"))
        assert reply == texts.SENT.format(phone=phone.mask(number(i)))
        say(pbot, "u1", "取消")
        clock.advance(60)
    reply = content(say(pbot, "u1", f"绑定手机 {number(99)}"))
    assert reply == flow_texts.USER_DAILY_LIMIT
    assert state_of(pbot, "u1")[0] == "WAIT_QUERY"
    assert len(fake_apis.sms) == phone.USER_DAILY
    # another user may still text that number
    assert content(say(pbot, "u2", f"绑定手机 {number(99)}")) == texts.SENT.format(
        phone=phone.mask(number(99))
    )
    clock.advance(DAY_SECONDS)
    assert content(say(pbot, "u1", f"绑定手机 {number(99)}")) == texts.SENT.format(
        phone=phone.mask(number(99))
    )


def test_the_capped_reply_is_in_the_users_language(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    for i in range(phone.NUMBER_DAILY):
        say(pbot, f"u{i}", f"绑定手机 {PHONE}")
        clock.advance(60)
    say(pbot, "en1", "language en")
    reply = content(say(pbot, "en1", f"bind phone {PHONE}"))
    assert reply == translate(flow_texts.NUMBER_DAILY_LIMIT, "en")
    assert reply.startswith("This number has received the most verification codes")
    for language in ("th", "tl", "ja"):
        assert translate(flow_texts.NUMBER_DAILY_LIMIT, language) != flow_texts.NUMBER_DAILY_LIMIT
        assert translate(flow_texts.USER_DAILY_LIMIT, language) != flow_texts.USER_DAILY_LIMIT


# --- a minimum interval per number, across users --------------------------------------------


def test_users_taking_turns_on_one_number_wait_for_its_interval(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    """NUMBER_BURST (2) codes per number within the minute, whoever asks: two accounts
    linking a shared number at once both get theirs, a third waits."""
    assert phone.NUMBER_BURST == 2
    for openid in ("u1", "u2"):
        reply = content(say(pbot, openid, f"绑定手机 {PHONE}"))
        assert reply == texts.SENT.format(phone=MASKED)
    assert content(say(pbot, "u3", f"绑定手机 {PHONE}")) == busy(60)
    assert state_of(pbot, "u3")[0] == "WAIT_PHONE_CODE"
    clock.advance(30)
    assert content(say(pbot, "u3", "重发")) == busy(30)
    assert content(say(pbot, "u4", f"绑定手机 {PHONE}")) == busy(30)
    assert len(fake_apis.sms) == 2
    clock.advance(30)
    assert content(say(pbot, "u3", "重发")) == texts.SENT.format(phone=MASKED)
    assert fake_apis.sms[-1]["phone"] == PHONE
    assert content(say(pbot, "u3", fake_apis.sms[-1]["code"])) == texts.BOUND.format(phone=MASKED)


def test_accounts_taking_turns_on_one_number_get_no_more_through(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    """Without a per-number interval, accounts taking turns texted one number every
    message (each account only waiting for its own minute)."""
    sent = 0
    for i in range(6):
        reply = content(say(pbot, f"u{i}", f"绑定手机 {PHONE}"))
        sent += reply == texts.SENT.format(phone=MASKED)
        clock.advance(5)
    assert sent == len(fake_apis.sms) == phone.NUMBER_BURST


def test_claims_for_one_number_at_the_same_moment_are_counted_once_each(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    """Many users' transactions claiming one number at once: exactly NUMBER_BURST win
    (the conditional UPDATE decides under the row lock; a first row is created once)."""
    engine = make_app().extensions["wxbot.engine"]
    now = clock()
    day = phone.day_number(now, "Asia/Shanghai")
    start = threading.Barrier(8)
    results: list[object] = []

    def claim(i: int) -> None:
        start.wait()
        with transaction(engine) as conn:
            results.append(phone.claim_send(conn, f"c{i}", PHONE, now, day))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if isinstance(r, phone.Claim)]
    assert len(results) == 8 and len(won) == phone.NUMBER_BURST
    row = quota_row(engine, phone.NUMBER, PHONE)
    assert row.sends == phone.NUMBER_BURST
    # the losers' own rows were given back: each may text another number at once
    with transaction(engine) as conn:
        loser = next(f"c{i}" for i in range(8) if f"c{i}" not in {c.openid for c in won})
        assert isinstance(phone.claim_send(conn, loser, number(1), now, day), phone.Claim)


def quota_row(engine: Any, scope: str, subject: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(quotas).where(quotas.c.scope == scope, quotas.c.subject == subject)
        ).first()


# --- a failed send, and the flow around a refusal -------------------------------------------


def test_a_failed_send_costs_no_budget(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    fake_apis.down.add("sms")
    assert content(say(pbot, "u1", f"绑定手机 {PHONE}")) == texts.SEND_FAILED
    for _ in range(phone.NUMBER_DAILY):
        assert content(say(pbot, "u1", "重发")) == texts.SEND_FAILED
    assert quota(pbot, phone.NUMBER, PHONE).sends == 0
    assert quota(pbot, phone.USER, "u1").sends == 0
    fake_apis.down.clear()
    assert content(say(pbot, "u1", "重发")) == texts.SENT.format(phone=MASKED)
    assert quota(pbot, phone.NUMBER, PHONE).sends == 1
    assert content(say(pbot, "u1", fake_apis.sms[-1]["code"])) == texts.BOUND.format(phone=MASKED)


def test_a_held_back_user_can_cancel_and_ask_questions(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    with pbot.engine.begin() as conn:
        writer.teach(conn, "客服电话是多少", "客服电话 95588。", now=clock(), taught_by=None)
    for openid in ("u1", "u2"):
        say(pbot, openid, f"绑定手机 {PHONE}")
    assert content(say(pbot, "u3", f"绑定手机 {PHONE}")) == busy(60)
    reply = content(say(pbot, "u3", "客服电话是多少"))
    assert reply.startswith("客服电话 95588。") and texts.ENTER_CODE in reply
    assert state_of(pbot, "u3")[0] == "WAIT_PHONE_CODE"
    say(pbot, "u3", "取消")
    assert state_of(pbot, "u3")[0] == "WAIT_QUERY"
    assert content(say(pbot, "u3", "客服电话是多少")) == "客服电话 95588。"
    # and one who hit a day's cap is back in the ordinary conversation
    for i in range(4, 4 + phone.NUMBER_DAILY):
        clock.advance(60)
        say(pbot, f"u{i}", f"绑定手机 {PHONE}")
    assert state_of(pbot, f"u{3 + phone.NUMBER_DAILY}")[0] == "WAIT_QUERY"
    assert content(say(pbot, f"u{3 + phone.NUMBER_DAILY}", "客服电话是多少")) == "客服电话 95588。"


def test_verifying_a_code_lets_the_user_bind_another_number_at_once(pbot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", f"绑定手机 {PHONE}")
    say(pbot, "u1", fake_apis.sms[-1]["code"])
    reply = content(say(pbot, "u1", f"绑定手机 {number(7)}"))
    assert reply == texts.SENT.format(phone=phone.mask(number(7)))
    assert quota(pbot, phone.USER, "u1").sends == 2


# --- the table stays small, and its migration ----------------------------------------------


def test_rows_of_earlier_days_are_pruned_as_codes_go(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    yesterday = phone.day_number(clock() - DAY_SECONDS, "Asia/Shanghai")
    old = {"day": yesterday, "sends": 3, "sent_at": clock() - DAY_SECONDS, "earlier_at": 0.0}
    with pbot.engine.begin() as conn:
        conn.execute(
            insert(quotas), [{"scope": "phone", "subject": number(i), **old} for i in range(3)]
        )

    def count() -> int:
        with pbot.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(quotas)).scalar_one()

    say(pbot, "u1", f"绑定手机 {PHONE}")  # adds two rows, prunes two
    assert count() == 3
    say(pbot, "u1", "取消")
    clock.advance(60)
    say(pbot, "u1", f"绑定手机 {number(50)}")  # adds one, prunes the last old one
    assert count() == 3
    with pbot.engine.connect() as conn:
        days = set(conn.execute(select(quotas.c.day)).scalars())
    assert yesterday not in days


def test_migration_0013_up_and_down(db_url) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0012_long_text")
        assert not inspect(engine).has_table("sms_quotas")
        upgrade(engine)
        assert inspect(engine).has_table("sms_quotas")
        command.downgrade(alembic_config(engine), "0012_long_text")
        assert not inspect(engine).has_table("sms_quotas")
        upgrade(engine)
        assert inspect(engine).has_table("sms_quotas")
    finally:
        engine.dispose()


def test_models_match_the_migration(make_app) -> None:  # type: ignore[no-untyped-def]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from wxbot.models import Base

    app = make_app()
    with app.extensions["wxbot.engine"].connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "sms_quotas" in repr(d)] == []
