"""Wordings learned from did-you-mean picks are exact keys of their entry, outside the
ranking: asked exactly they answer the entry, whatever the ranking says; every other wording
is ranked as if they did not exist (word index, character reranker, vectors), in every way
the index is updated, in every process. SQLite and MySQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tests.fake_embeddings import FakeEmbeddings
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
from wxbot.qa import KnowledgeBase, freshness, learning, writer
from wxbot.qa.embeddings import EmbeddingClient, Semantic, embed_missing
from wxbot.qa.kb import CONFIDENT, SURE
from wxbot.qa.models import KbEmbedding

ENTRIES = [
    (["怎么申请退款"], "在订单页点「申请退款」。"),
    (["怎么申请发票"], "在订单页点「开发票」。"),
    (["营业时间是几点"], "9:00-17:00。"),
    (["快递多久能到"], "一般三天。"),
    (["怎么修改收货地址"], "在订单页改地址。"),
]
LEARNED = "钱怎么退回到卡里"  # taught to the invoice entry by careless picks
NEAR = "钱怎么退回到卡里面"  # one word more: nobody asked it
NOW = 1_800_000_000.0


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    with engine.begin() as conn:
        return [
            writer.create_entry(conn, qs, answer, now=NOW, source="api") for qs, answer in ENTRIES
        ]


def loaded(engine: Engine, **options: Any) -> KnowledgeBase:
    kb = KnowledgeBase(engine, **options)
    refresh(kb)
    return kb


def refresh(kb: KnowledgeBase) -> None:
    with kb.engine.connect() as conn:  # type: ignore[union-attr]
        kb.refresh_if_stale(conn)


def learn(engine: Engine, entry_id: int, question: str = LEARNED) -> None:
    """Two users pick ``entry_id`` after asking ``question``: it is learned."""
    for user in ("o_a", "o_b"):
        with engine.begin() as conn:
            learning.record_pick(conn, user, question, entry_id, now=NOW, min_users=2)
    with engine.connect() as conn:
        total, items = learning.list_learned(conn)
    assert total == 1 and items[0]["question"] == question


def ranking(kb: KnowledgeBase, text: str) -> list[tuple[int, float]]:
    return [(h.entry_id, round(h.confidence, 6)) for h in kb.search(text, limit=5)]


def decision(kb: KnowledgeBase, text: str) -> tuple[int | None, list[int]]:
    found = kb.lookup(text)
    best = None if found.best is None else found.best.entry_id
    return best, [m.entry_id for m in found.suggestions]


def exact(kb: KnowledgeBase) -> int | None:
    """The entry a learned wording answers when the ranking answers nothing at all."""
    kb.confident = kb.sure = 99.0  # no ranked match can reach these
    try:
        found = kb.lookup(LEARNED + "？")  # the same normalised wording
        return None if found.best is None else found.best.entry_id
    finally:
        kb.confident, kb.sure = CONFIDENT, SURE


def test_a_learned_wording_answers_its_entry_exactly_before_any_ranking(engine, ids) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    unranked = ranking(kb, LEARNED)
    invoice = ids[1]
    learn(engine, invoice)
    refresh(kb)
    assert exact(kb) == invoice
    found = kb.lookup(LEARNED)
    assert found.best is not None and found.best.entry_id == invoice
    assert found.best.question == "怎么申请发票" and found.best.answer == "在订单页点「开发票」。"
    assert ranking(kb, LEARNED) == unranked  # the ranking itself does not know it
    assert kb.has_question(invoice, LEARNED) and not kb.has_question(ids[0], LEARNED)
    assert kb.is_stored_question(LEARNED)


def test_a_near_wording_is_ranked_as_if_nothing_was_learned(engine, ids) -> None:  # type: ignore[no-untyped-def]
    never = loaded(engine)  # a knowledge base where it was never learned
    before = ranking(never, NEAR), decision(never, NEAR)
    learn(engine, ids[1])
    refresh(never)  # incrementally
    fresh = loaded(engine)  # built in full
    for kb in (never, fresh):
        assert exact(kb) == ids[1]
        assert (ranking(kb, NEAR), decision(kb, NEAR)) == before
        assert not kb.is_stored_question(NEAR)


def test_undo_removes_the_learned_wording(engine, ids) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    before = ranking(kb, LEARNED), decision(kb, LEARNED)
    learn(engine, ids[1])
    refresh(kb)
    assert exact(kb) == ids[1]
    with engine.connect() as conn:
        (item,) = learning.list_learned(conn)[1]
    with engine.begin() as conn:
        learning.undo_learned(conn, item["id"], now=NOW)
    refresh(kb)
    for index in (kb, loaded(engine)):
        assert exact(index) is None
        assert (ranking(index, LEARNED), decision(index, LEARNED)) == before
        assert not index.has_question(ids[1], LEARNED) and not index.is_stored_question(LEARNED)


def test_deleting_the_entry_removes_its_learned_wordings(engine, ids) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    learn(engine, ids[1])
    refresh(kb)
    assert exact(kb) == ids[1]
    with engine.begin() as conn:
        writer.delete_entry(conn, ids[1], now=NOW)
    refresh(kb)
    for index in (kb, loaded(engine)):
        assert exact(index) is None
        assert ids[1] not in decision(index, LEARNED)[1]
        assert not index.has_question(ids[1], LEARNED) and not index.is_stored_question(LEARNED)


def test_editing_the_entry_keeps_its_learned_wording_exact(engine, ids) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    learn(engine, ids[1])
    refresh(kb)
    with engine.begin() as conn:
        writer.add_questions(conn, ids[1], ["发票怎么开"], now=NOW)  # an admin's: ranked
    refresh(kb)
    before = ranking(kb, NEAR)
    with engine.begin() as conn:  # a PUT of the whole entry: the origins are kept
        writer.update_entry(
            conn,
            ids[1],
            now=NOW,
            questions=["怎么申请发票", LEARNED, "发票怎么开"],
            answer="在订单页点「开电子发票」。",
        )
    with engine.connect() as conn:
        assert learning.list_learned(conn)[0] == 1
    refresh(kb)
    for index in (kb, loaded(engine)):
        assert exact(index) == ids[1]
        assert index.lookup(LEARNED).best.answer == "在订单页点「开电子发票」。"  # type: ignore[union-attr]
        assert index.is_stored_question("发票怎么开")
        # ranked: the entry's two other questions, not the learned one between them
        assert [e for e, _ in ranking(index, NEAR)] == [e for e, _ in before]
    with engine.begin() as conn:  # left with its learned wording alone: ranked after all
        writer.update_entry(conn, ids[1], now=NOW, questions=[LEARNED])
    refresh(kb)
    for index in (kb, loaded(engine)):
        assert exact(index) == ids[1]
        assert ranking(index, NEAR)[0][0] == ids[1]
        assert index.lookup(NEAR).best.question == LEARNED  # type: ignore[union-attr]


def test_another_process_sees_it_through_the_knowledge_version(engine, ids) -> None:  # type: ignore[no-untyped-def]
    here, there = loaded(engine), loaded(engine)
    before = ranking(there, NEAR), decision(there, NEAR)
    version = there.version
    learn(engine, ids[1])  # through "here"'s database, as a pick in this process would be
    refresh(here)
    assert exact(here) == ids[1]
    refresh(there)
    assert there.version > version
    assert exact(there) == ids[1]
    assert (ranking(there, NEAR), decision(there, NEAR)) == before
    with engine.connect() as conn:
        (item,) = learning.list_learned(conn)[1]
    with engine.begin() as conn:
        learning.undo_learned(conn, item["id"], now=NOW)
    refresh(there)
    assert exact(there) is None


@pytest.mark.parametrize("path", ["background rebuild", "compaction"])
def test_full_rebuilds_keep_learned_wordings_out_of_the_ranking(
    engine, ids, monkeypatch, path: str
) -> None:  # type: ignore[no-untyped-def]
    kb = loaded(engine)
    before = ranking(kb, NEAR), decision(kb, NEAR)
    if path == "background rebuild":
        monkeypatch.setattr(freshness, "BACKGROUND_REBUILD_OVER", 1)  # every base is large
        monkeypatch.setattr(freshness, "INCREMENTAL_LIMIT", 0)  # every change: a rebuild
        learn(engine, ids[1])
        refresh(kb)
        assert kb.wait_until_rebuilt(30)
    else:
        for _ in range(10):  # each leaves a dead document behind
            with engine.begin() as conn:
                writer.update_entry(conn, ids[0], now=NOW, answer=ENTRIES[0][1])
            refresh(kb)
        assert kb._index.dead_fraction > 0.5  # noqa: SLF001 - a small index: not compacted
        monkeypatch.setattr(freshness, "COMPACT_OVER_DOCUMENTS", 1)  # now it is, on a change
        learn(engine, ids[1])
        refresh(kb)
        assert kb._index.dead_fraction == 0.0  # noqa: SLF001 - compacted: built anew
    assert exact(kb) == ids[1]
    assert (ranking(kb, NEAR), decision(kb, NEAR)) == before


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    yield fake
    fake.close()


def test_the_semantic_index_has_no_vector_of_a_learned_wording(
    engine, ids, fake_embeddings
) -> None:  # type: ignore[no-untyped-def]
    client = EmbeddingClient(fake_embeddings.url, "fake-bge")
    assert embed_missing(engine, client, now=NOW) == len(ENTRIES)
    kb = loaded(engine, semantic=Semantic(client, engine, 5.0))
    semantic = kb.semantic
    assert semantic is not None and len(semantic.index) == len(ENTRIES)
    learn(engine, ids[1])
    refresh(kb)  # (a question without a vector would start the background job here)
    assert semantic._busy.acquire(timeout=30)  # noqa: SLF001 - no job running
    semantic._busy.release()  # noqa: SLF001
    assert embed_missing(engine, client, now=NOW) == 0  # nothing to embed
    assert not any(LEARNED in r["input"] for r in fake_embeddings.requests)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(KbEmbedding)).scalar_one()
    assert stored == len(ENTRIES)
    refresh(kb)
    assert len(semantic.index) == len(ENTRIES)
    assert len(loaded(engine, semantic=Semantic(client, engine, 5.0)).semantic.index) == len(  # type: ignore[union-attr]
        ENTRIES
    )
    assert exact(kb) == ids[1]
