"""The BM25 index on its own: ranking, confidence, incremental updates."""

from __future__ import annotations

from wxbot.qa.index import Bm25Index
from wxbot.qa.text import STOPWORD_WEIGHT, STOPWORDS, get_analyzer

FAQ = {
    1: ["怎么申请退款", "退款流程"],
    2: ["营业时间是几点"],
    3: ["怎么修改密码"],
    4: ["运费怎么算"],
}


def build() -> Bm25Index:
    analyze = get_analyzer().analyze
    index = Bm25Index(STOPWORDS, STOPWORD_WEIGHT)
    for entry_id, questions in FAQ.items():
        index.add_entry(entry_id, [analyze(q) for q in questions])
    return index


def search(index: Bm25Index, text: str):  # type: ignore[no-untyped-def]
    return index.search(get_analyzer().analyze(text))


def test_exact_question_has_full_confidence() -> None:
    hits = search(build(), "营业时间是几点")
    assert hits[0].entry_id == 2 and abs(hits[0].confidence - 1.0) < 1e-6


def test_alias_matches_its_entry_once() -> None:
    hits = search(build(), "退款流程")
    assert hits[0].entry_id == 1
    assert [h.entry_id for h in hits].count(1) == 1


def test_reworded_question_ranks_first_with_lower_confidence() -> None:
    hits = search(build(), "密码怎么改")
    assert hits[0].entry_id == 3 and 0.3 < hits[0].confidence < 1.0


def test_nothing_in_common_finds_nothing() -> None:
    assert search(build(), "量子力学") == []
    assert build().search([]) == []
    assert Bm25Index().search(["x"]) == []


def test_remove_and_replace_entries() -> None:
    index = build()
    index.remove_entry(2)
    assert all(h.entry_id != 2 for h in search(index, "营业时间是几点"))
    assert len(index) == 4  # four documents left (entry 1 has two)
    index.add_entry(3, [get_analyzer().analyze("忘记密码怎么办")])
    hits = search(index, "忘记密码怎么办")
    assert hits[0].entry_id == 3 and hits[0].confidence > 0.99
    assert index.dead_fraction > 0
    assert index.remove_entry(99) is False


def test_idf_gives_back_the_df_of_removed_documents() -> None:
    index = build()
    before = index.df("密码")
    index.remove_entry(3)
    assert index.df("密码") == before - 1


def test_common_terms_beyond_the_scan_budget_still_count(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import wxbot.qa.index as module

    monkeypatch.setattr(module, "SCAN_BUDGET", 1)
    analyze = get_analyzer().analyze
    index = Bm25Index()
    for i in range(50):
        index.add_entry(i, [analyze(f"会员卡第{i}号怎么用")])
    index.add_entry(100, [analyze("礼品卡怎么用")])
    index.add_entry(101, [analyze("礼品卡怎么买")])
    hits = index.search(analyze("礼品卡怎么用"))
    assert hits[0].entry_id == 100


def test_searches_run_safely_while_entries_change() -> None:
    import threading

    analyze = get_analyzer().analyze
    index = build()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                index.search(analyze("怎么修改密码"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(300):
        index.add_entry(10 + i % 7, [analyze(f"怎么修改第{i}个密码")])
        if i % 3 == 0:
            index.remove_entry(10 + (i * 5) % 7)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert search(index, "怎么修改密码")[0].entry_id in {3, *range(10, 17)}
