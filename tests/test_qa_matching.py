"""Answering from the knowledge base through the bot, on SQLite and MySQL, with the starter
FAQ loaded through the real importer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.helpers import content, say
from wxbot.dialog.handlers import query
from wxbot.qa.importer import import_files
from wxbot.qa.models import KbEntry, KbUnanswered

FAQ = Path(__file__).resolve().parent.parent / "knowledge" / "faq.txt"
ADMIN = "o_admin"


@pytest.fixture
def faq_app(make_app, clock):  # type: ignore[no-untyped-def]
    app = make_app(admin_openids=frozenset({ADMIN}))
    report = import_files(app.extensions["wxbot.engine"], [str(FAQ)], now=clock())
    assert report.written and report.added >= 100 and not report.errors
    return app


@pytest.fixture
def faq_bot(faq_app):  # type: ignore[no-untyped-def]
    return faq_app.extensions["wxbot.bot"]


def test_exact_question(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "400-820-1234" in content(say(faq_bot, "o_u", "客服电话是多少"))


def test_alias_and_punctuation(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "忘记密码" in content(say(faq_bot, "o_u", "密码忘了怎么找回？？"))


def test_reworded_question(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "48 小时内发货" in content(say(faq_bot, "o_u", "付款以后多久发货"))


def test_typo(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "设置新密码" in content(say(faq_bot, "o_u", "忘记密马怎么办"))  # 码 → 马
    assert "48 小时内发货" in content(say(faq_bot, "o_u", "下单后多久发获"))  # 货 → 获


def test_typo_in_a_short_question_finds_the_right_entry(faq_bot) -> None:  # type: ignore[no-untyped-def]
    reply = content(say(faq_bot, "o_u", "优惠卷怎么用"))  # 券 → 卷 in four characters
    assert "自动选择最优的优惠券" in reply or "1. 优惠券怎么用" in reply


def test_traditional_characters_and_full_width(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "忘记密码" in content(say(faq_bot, "o_u", "忘記密碼怎麼辦"))
    assert "应用商店" in content(say(faq_bot, "o_u", "ＡＰＰ在哪裡下載"))


def test_unrelated_question_is_not_answered_and_is_recorded(faq_app, faq_bot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        reply = content(say(faq_bot, "o_u", "量子力学是什么？"))
        assert reply.startswith(query.DONT_KNOW)
        assert "学习" not in reply  # not allowed to teach: no hint
    with faq_app.extensions["wxbot.engine"].connect() as conn:
        rows = conn.execute(select(KbUnanswered.__table__)).all()
    assert [(r.question, r.count) for r in rows] == [("量子力学是什么？", 2)]


def test_teachers_are_told_how_to_teach(faq_bot) -> None:  # type: ignore[no-untyped-def]
    assert "「学习」" in content(say(faq_bot, ADMIN, "量子力学是什么"))


def test_did_you_mean_then_pick_a_number(faq_app) -> None:  # type: ignore[no-untyped-def]
    kb = faq_app.extensions["wxbot.bot"].deps.kb
    bot = faq_app.extensions["wxbot.bot"]
    kb.confident = kb.sure = 99.0  # nothing is confident: every match is a suggestion
    reply = content(say(bot, "o_u", "怎么查物流"))
    assert reply.startswith("我不太确定") and "1. 怎么查物流" in reply
    assert "查看物流" in content(say(bot, "o_u", "１"))
    # a number without an offer is just a question
    assert "查看物流" not in content(say(bot, "o_u", "1"))


def test_hits_are_counted_in_batches(faq_app, faq_bot) -> None:  # type: ignore[no-untyped-def]
    kb = faq_bot.deps.kb
    for _ in range(3):
        say(faq_bot, "o_u", "客服电话是多少")
    say(faq_bot, "o_u", "怎么查物流")
    engine = faq_app.extensions["wxbot.engine"]
    hits = select(KbEntry.hits).where(KbEntry.hits > 0).order_by(KbEntry.hits.desc())
    with engine.connect() as conn:
        assert conn.execute(hits).scalars().all() == []  # not one write per message
    kb.flush_hits_now()  # one statement for both entries, each with its own count
    with engine.connect() as conn:
        assert conn.execute(hits).scalars().all() == [3, 1]
    say(faq_bot, "o_u", "客服电话是多少")
    kb.flush_hits_now()
    with engine.connect() as conn:
        assert conn.execute(hits).scalars().all() == [4, 1]


def test_empty_knowledge_base_says_it_does_not_know(bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "o_u", "你好")).startswith(query.DONT_KNOW)


def test_paraphrase_accuracy_does_not_regress() -> None:
    """A floor under the measured figures (tests/paraphrases.py prints them), to catch a
    matcher change that breaks matching, not to tune against."""
    from tests.paraphrases import build_kb, evaluate, load_cases

    cases, unrelated = load_cases()
    result = evaluate(build_kb(str(FAQ)), cases, unrelated)
    assert len(cases) >= 100 and result["top1"] >= 0.6
    assert result["answered_wrong"] <= 0.2 and result["unrelated_declined"] >= 0.9


@pytest.mark.parametrize("name", ["bank", "gov"])
def test_one_question_per_entry_accuracy_does_not_regress(name: str) -> None:
    """The same kind of floor on the sets of one question per entry (rewordings must be
    matched through synonyms and answers), well under the measured figures."""
    from tests.paraphrases import SETS, build_kb, evaluate, read_cases

    chosen = SETS[name]["test"]
    cases, unrelated = read_cases(chosen)
    result = evaluate(build_kb(str(chosen.faq)), cases, unrelated)
    assert result.share("top1") >= 0.65 and result.share("direct") >= 0.38
    assert result.share("wrong") <= 0.06 and result.unrelated_answered <= 2
