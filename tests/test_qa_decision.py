"""The answer decision at the edges: ties, tiny bases, the two rankers, and the character
statistics kept in step with incremental updates (on SQLite and MySQL)."""

from __future__ import annotations

import math

import pytest

from wxbot.qa import writer
from wxbot.qa.kb import KnowledgeBase
from wxbot.qa.rerank import GramStats, entry_text


def teach(kb: KnowledgeBase, *pairs: tuple[str, str], language: str | None = None) -> list[int]:
    assert kb.engine is not None
    with kb.engine.begin() as conn:
        ids = [
            writer.create_entry(conn, [q], a, now=1.0, source="api", language=language)
            for q, a in pairs
        ]
        kb.refresh_if_stale(conn)
    return ids


@pytest.fixture
def kb(app) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    return app.extensions["wxbot.bot"].deps.kb


HOURS = ("营业时间", "营业时间：周一至周五 9:00-18:00。")
LICENCE = ("营业执照", "营业执照：带身份证到市场监管窗口办理。")


def test_an_equal_tie_is_never_answered(kb) -> None:  # type: ignore[no-untyped-def]
    hours, licence = teach(kb, HOURS, LICENCE)
    found = kb.lookup("营业")
    assert found.best is None  # both fit: ask back
    assert {m.entry_id for m in found.suggestions} == {hours, licence}
    hits = kb.search("营业", 2)
    assert abs(hits[0].confidence - hits[1].confidence) < kb.tie
    assert kb.lookup("营业时间几点").best.entry_id == hours
    assert kb.lookup("营业执照怎么办").best.entry_id == licence


def test_a_tie_is_not_answered_however_high_it_scores(kb) -> None:  # type: ignore[no-untyped-def]
    teach(
        kb,
        ("会员怎么退款甲", "甲：在订单页申请退款。"),
        ("会员怎么退款乙", "乙：在订单页申请退款。"),
    )
    hits = kb.search("会员怎么退款", 2)
    assert hits[0].confidence - hits[1].confidence < kb.tie  # both fit equally well ...
    kb.sure = hits[0].confidence  # ... and as well as a near-identical question
    assert kb.lookup("会员怎么退款").best is None
    assert len(kb.lookup("会员怎么退款").suggestions) == 2


def test_a_tiny_base_answers_what_it_has_not_what_shares_a_word(kb) -> None:  # type: ignore[no-untyped-def]
    (hours,) = teach(kb, HOURS)
    assert kb.lookup("营业时间表").best.entry_id == hours  # the whole entry, and a little more
    assert kb.lookup("营业执照怎么办").best is None  # half a match with no runner-up
    teach(kb, ("怎么申请退款", "在订单页申请退款。"), ("发票怎么开", "在订单页申请开票。"))
    assert kb.lookup("怎么退钱").best is not None
    assert kb.lookup("公司团建去哪里玩").best is None


def test_the_runner_up_floor_stands_in_for_a_missing_runner_up(kb) -> None:  # type: ignore[no-untyped-def]
    (hours,) = teach(kb, HOURS)
    hits = kb.search("营业时间表", 2)
    assert len(hits) == 1
    kb.floor = hits[0].confidence - kb.tie / 2  # as if an entry almost as good existed
    assert kb.lookup("营业时间表").best is None
    kb.floor = 0.0
    assert kb.lookup("营业时间表").best.entry_id == hours


def test_answer_text_ranks_an_entry_whose_question_shares_nothing(kb) -> None:  # type: ignore[no-untyped-def]
    risk, buy = teach(
        kb,
        ("理财产品有风险吗", "理财产品不保本，过往收益不代表未来，请按风险等级选择。"),
        ("怎么购买理财产品", "在手机银行「理财」页选择产品，输入金额并确认购买。"),
    )
    hits = kb.search("理财保本吗", 2)
    assert hits[0].entry_id == risk  # 「不保本」 is only in the answer


def test_language_preference_still_applies(kb) -> None:  # type: ignore[no-untyped-def]
    (zh,) = teach(kb, ("refund policy", "退款政策：七天无理由。"), language="zh")
    (en,) = teach(kb, ("refund policy please", "Refunds within 7 days."), language="en")
    assert kb.search("refund policy", 1, language="en")[0].entry_id == en
    assert kb.search("refund policy", 1, language="zh")[0].entry_id == zh


def test_a_taught_entry_language_applies_at_once(kb) -> None:  # type: ignore[no-untyped-def]
    """Each teach is its own incremental refresh: the second entry's language must reach
    the ranking without a full rebuild (the entry that fits the words best is in English)."""
    (zh,) = teach(kb, ("refund policy please", "退款政策：七天无理由。"), language="zh")
    (en,) = teach(kb, ("refund policy", "Refunds within 7 days."), language="en")
    assert kb.search("refund policy", 1, language="en")[0].entry_id == en
    assert kb.search("refund policy", 1, language="zh")[0].entry_id == zh
    assert kb.engine is not None
    with kb.engine.begin() as conn:  # and a language taken away applies at once too
        writer.update_entry(conn, en, now=2.0, language=None)
        kb.refresh_if_stale(conn)
    assert kb.search("refund policy", 1, language="zh")[0].entry_id == en


def test_gram_statistics_follow_incremental_updates(kb) -> None:  # type: ignore[no-untyped-def]
    ids = teach(kb, HOURS, LICENCE, ("怎么申请退款", "在订单页申请退款。"))
    assert kb.engine is not None
    with kb.engine.begin() as conn:
        writer.update_entry(conn, ids[2], now=2.0, answer="退款请联系客服，三个工作日到账。")
        writer.delete_entry(conn, ids[1], now=2.0)
        kb.refresh_if_stale(conn)
    rebuilt = GramStats(len(kb))
    for entry_id in kb._answers:  # noqa: SLF001 - the statistics a rebuild would make
        rebuilt.add(entry_id, entry_text(kb._questions[entry_id], kb._answers[entry_id])[0])  # noqa: SLF001
    for gram in ("营", "业", "营业", "退款", "客服", "执照", "到账"):
        assert math.isclose(kb._stats.idf(gram), rebuilt.idf(gram)), gram  # noqa: SLF001


def test_gram_statistics_sample_large_bases() -> None:
    stats = GramStats(expected_entries=10 * 4_000)
    assert stats.stride == 10
    for entry_id in range(40_000):
        stats.add(entry_id, "营业时间" if stats.sampled(entry_id) else None)
    # every sampled entry had the gram: the scaled count says every entry has it
    assert math.isclose(stats.idf("营业"), 1.0)
    assert stats.idf("执照") == pytest.approx(math.log(40_001) + 1)
    stats.remove(0, "营业时间")
    assert stats.idf("营业") > 1.0
