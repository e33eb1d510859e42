"""KnowledgeBase.explain: the decision lookup makes (the same code path, so always the same
decision) plus what it was made from: the ranked candidates with the word rankers' evidence,
the semantic similarities and fused scores where meaning was asked, the thresholds in force.
On the starter FAQ, words alone and with the bundled sentence encoder. SQLite and MySQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.fake_embeddings import FakeEmbeddings
from tests.paraphrases import SETS, read_cases
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
from wxbot.qa import KnowledgeBase, learning
from wxbot.qa.embeddings import EmbeddingClient, Semantic, embed_missing
from wxbot.qa.explain import ANSWER, FUSION, LEARNED, SUGGEST, UNKNOWN, WORDS
from wxbot.qa.fusion import LOCAL_MODEL_FUSION
from wxbot.qa.importer import import_files
from wxbot.qa.kb import CONFIDENT, MARGIN, RUNNER_UP_FLOOR, SURE
from wxbot.qa.local_model import LocalEmbedder

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
STARTER = [str(KNOWLEDGE / "faq.txt"), str(KNOWLEDGE / "faq-languages.txt")]
NOW = 1_800_000_000.0
PARCEL = "包裹丢了怎么办"  # the entry every 「X丢了怎么办」 lands on
LOST = ["孩子丢了怎么办", "车丢了怎么办", "银行卡丢了怎么办"]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    report = import_files(engine, STARTER, now=NOW)
    assert report.written and not report.errors
    yield engine
    engine.dispose()


def loaded(engine: Engine, semantic: Semantic | None = None) -> KnowledgeBase:
    kb = KnowledgeBase(engine, semantic=semantic)
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    return kb


def dev_questions() -> list[str]:
    cases, unrelated = read_cases(SETS["starter"]["dev"])
    return [q for _, q in cases[:40]] + unrelated[:10] + LOST + [PARCEL, "", "？？"]


def words_are_consistent(kb: KnowledgeBase, x) -> None:  # type: ignore[no-untyped-def]
    """The numbers shown are the ones the word rule compared."""
    found = x.lookup
    scores = {c.entry_id: c.score for c in x.candidates}
    assert [c.score for c in x.candidates] == sorted(scores.values(), reverse=True)
    for m in found.suggestions:
        assert scores[m.entry_id] == m.confidence and m.confidence >= kb.suggest
    if found.best is not None:
        assert x.candidates[0].entry_id == found.best.entry_id
        assert x.candidates[0].score == found.best.confidence == x.top
    if x.candidates:
        second = x.candidates[1].score if len(x.candidates) > 1 else 0.0
        assert x.lead == pytest.approx(x.top - max(second, kb.floor))


def test_explain_makes_the_decision_lookup_makes_on_the_dev_questions(engine) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    kinds = set()
    for i, question in enumerate(dev_questions()):
        language = (None, "zh", "en")[i % 3]
        x = kb.explain(question, language)
        assert x.lookup == kb.lookup(question, language=language), question
        assert (x.by, x.semantic, x.language, x.fusion) == (WORDS, "off", language, None)
        words_are_consistent(kb, x)
        kinds.add(x.kind)
    assert kinds == {ANSWER, SUGGEST, UNKNOWN}  # the sample reaches every outcome


def test_a_lost_child_is_offered_the_lost_parcel_and_the_numbers_say_why(engine) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    x = kb.explain("孩子丢了怎么办", "zh")
    assert x.kind == SUGGEST and x.by == WORDS and x.lookup.best is None
    parcel, *others = x.candidates
    assert parcel.question == PARCEL and x.lookup.suggestions[0].question == PARCEL
    # half the words match (丢了, 怎么办): not CONFIDENT, and no lead over the runner-up
    assert parcel.overlap is not None and parcel.overlap > 0.5
    assert parcel.evidence is not None and parcel.evidence.language == 1.0
    assert parcel.score == x.top < CONFIDENT and x.lead is not None and x.lead < MARGIN
    assert parcel.similarity is None and parcel.fused is None  # no meaning asked
    assert len(others) >= 5  # the whole pool scored, not only the two the rule compared
    d = x.to_dict()
    assert d["decision"] == {
        "kind": "suggest",
        "by": "words",
        "entry_id": None,
        "question": None,
        "confidence": None,
        "top": round(parcel.score, 4),
        "lead": round(x.lead, 4),
    }
    assert d["candidates"][0]["evidence"].keys() == {
        "overlap",
        "text",
        "question",
        "share",
        "language",
    }
    assert d["thresholds"]["confident"] == CONFIDENT and d["thresholds"]["floor"] == RUNNER_UP_FLOOR
    assert d["thresholds"]["sure"] == SURE and d["semantic"] == "off" and d["fusion"] is None

    car = kb.explain("车丢了怎么办", "zh")  # fewer words, the same two matched: answered
    assert car.kind == ANSWER and car.lookup.best is not None
    assert car.lookup.best.question == PARCEL and car.candidates[0].question == PARCEL
    assert car.top is not None and car.top >= CONFIDENT and car.lead is not None
    assert car.lead >= MARGIN


def test_a_learned_wording_is_explained_as_learned(engine) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    asked = "娃丢了咋整"
    parcel = next(c.entry_id for c in kb.explain("包裹丢了怎么办").candidates)
    for user in ("o_a", "o_b"):  # two users picked the parcel entry after asking it
        with engine.begin() as conn:
            learning.record_pick(conn, user, asked, parcel, now=NOW, min_users=2)
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    x = kb.explain(asked)
    assert x.lookup == kb.lookup(asked) and x.kind == ANSWER and x.by == LEARNED
    assert x.lookup.best is not None and x.lookup.best.entry_id == parcel
    assert x.candidates == () and x.top is None and x.to_dict()["decision"]["by"] == "learned"


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    yield fake
    fake.close()


def test_an_embedding_service_fused_by_rank_is_explained(engine, fake_embeddings) -> None:  # type: ignore[no-untyped-def]
    client = EmbeddingClient(fake_embeddings.url, "fake-bge")
    embed_missing(engine, client, now=NOW)
    kb = loaded(engine, Semantic(client, engine, 5.0))  # RankFusion: no fused scores
    fused = 0
    for question in dev_questions()[:20] + LOST:
        x = kb.explain(question)
        assert x.lookup == kb.lookup(question), question
        if x.by == FUSION:
            fused += 1
            assert x.semantic == "used" and x.fusion is not None
            assert x.fusion["rule"] == "RankFusion" and "k" in x.fusion
            assert any(c.similarity is not None for c in x.candidates)
            assert all(c.fused is None for c in x.candidates)
        else:
            assert x.by == WORDS and x.semantic == "skipped"  # the words were sure
    assert fused >= 10
    fake_embeddings.down = True  # no vector for the question: the words decide alone
    x = kb.explain("孩子丢了怎么办")
    assert x.lookup == kb.lookup("孩子丢了怎么办")
    assert (x.by, x.semantic, x.fusion) == (WORDS, "unavailable", None)


@pytest.fixture(scope="module")
def encoder() -> LocalEmbedder:
    encoder = LocalEmbedder()  # the test extra installs it: fails if missing
    encoder.load()
    return encoder


def test_the_bundled_encoder_answers_every_lost_thing_with_the_parcel(engine, encoder) -> None:  # type: ignore[no-untyped-def]
    embed_missing(engine, encoder, now=NOW)
    kb = loaded(engine, Semantic(encoder, engine, 5.0, LOCAL_MODEL_FUSION))
    words_alone = loaded(engine)
    for question in LOST:
        x = kb.explain(question, "zh")
        assert x.lookup == kb.lookup(question, language="zh")
        best = x.lookup.best
        assert best is not None and best.question == PARCEL, question
        assert (x.kind, x.by, x.semantic) == (ANSWER, FUSION, "used")
        assert x.fusion is not None and x.fusion["rule"] == "ScoreFusion"
        assert x.fusion["weight"] == LOCAL_MODEL_FUSION.weight
        top, runner_up = x.candidates[:2]
        # the fused score the fusion compared: lexical + weight x cosine, reported on the
        # lexical scale as the answer's confidence
        assert top.entry_id == best.entry_id and top.fused == x.top
        assert top.score is not None and top.similarity is not None
        assert top.fused == pytest.approx(top.score + LOCAL_MODEL_FUSION.weight * top.similarity)
        assert best.confidence == pytest.approx(x.top / (1 + LOCAL_MODEL_FUSION.weight))
        assert x.top >= LOCAL_MODEL_FUSION.confident and x.lead is not None
        assert x.lead == pytest.approx(top.fused - runner_up.fused)  # type: ignore[operator]
        assert x.lead >= LOCAL_MODEL_FUSION.margin
    # by words alone the child and the bank card were only offered the parcel
    for question in ("孩子丢了怎么办", "银行卡丢了怎么办"):
        x = words_alone.explain(question, "zh")
        assert x.kind == SUGGEST and x.lookup.suggestions[0].question == PARCEL
    for question in dev_questions()[:8]:
        assert kb.explain(question).lookup == kb.lookup(question), question
