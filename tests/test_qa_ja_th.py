"""Japanese questions typed in kana find the kanji words of stored questions.

Users type 「へんぴん」 for 返品 and 「そうりょう」 for 送料; the word index had no term in common
between the two (hiragana grams are weak terms, kanji are jieba words and characters), so
such a question found nothing or a neighbour. The knowledge base's Japanese questions now
teach the index the kana reading of each of their kanji words (pykakasi, the optional
``wxbot[japanese]``), and a query's kana that spell one bring that word's terms along.
Without pykakasi nothing changes. Chinese text is never read."""

from __future__ import annotations

from pathlib import Path

import pytest

from wxbot.qa import readings, writer
from wxbot.qa.kb import KnowledgeBase
from wxbot.qa.text import get_analyzer, normalize

ENTRIES = [
    ("送料はいくらですか", "全国一律500円です。"),
    ("返品はできますか", "到着後7日以内なら返品できます。"),
    ("交換はできますか", "サイズ違いは交換できます。"),
    ("返金はいつされますか", "返品到着後5日以内に返金します。"),
    ("退会するにはどうすればいいですか", "マイページの設定から手続きできます。"),
    ("会員登録の方法を教えてください", "トップページの新規登録からどうぞ。"),
    ("定期便をお休みしたい", "マイページの定期便の管理から設定できます。"),
]


def _kb(tmp_path: Path) -> KnowledgeBase:
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'kb.sqlite3'}")
    upgrade(engine)
    with engine.begin() as conn:
        for question, answer in ENTRIES:
            writer.create_entry(conn, [question], answer, now=1.0, source="api", language="ja")
    kb = KnowledgeBase(engine)
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    return kb


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    pytest.importorskip("pykakasi")
    return _kb(tmp_path)


@pytest.mark.parametrize(
    ("asked", "wanted"),
    [
        ("へんぴんしたいです", "返品はできますか"),
        ("そうりょうっていくら", "送料はいくらですか"),
        ("ていきびん止めたい", "定期便をお休みしたい"),
    ],
)
def test_a_kana_spelling_finds_the_kanji_question(kb, asked: str, wanted: str) -> None:  # type: ignore[no-untyped-def]
    """Answered: the word index meets the kanji word through its reading, and the
    character ranker compares the kana as that word (KnowledgeBase.evidence)."""
    found = kb.lookup(asked, language="ja")
    assert found.best is not None and found.best.question == wanted, (asked, found)


def test_the_index_learns_readings_from_the_base(kb) -> None:  # type: ignore[no-untyped-def]
    spellings = kb._spellings
    assert spellings.spelled(normalize("へんぴんとそうりょう")) == ["返品", "送料"]
    assert spellings.respell(normalize("ヘンピンしたい")) == "返品したい"  # katakana folded
    asked = normalize("へんぴんしたい")
    assert "返品" in get_analyzer().query(asked, None, spellings.spelled(asked)).words


def test_a_word_an_edit_removed_loses_its_reading(kb) -> None:  # type: ignore[no-untyped-def]
    """Counted per entry: a process that applied the deletion holds what a fresh one does."""
    from wxbot.qa import store

    with kb.engine.begin() as conn:
        entry = store.find_entry(conn, "返品はできますか")
        writer.delete_entry(conn, entry.id, now=2.0)
    with kb.engine.connect() as conn:
        kb.refresh_if_stale(conn)
    assert kb._spellings.spelled(normalize("へんぴんとそうりょう")) == ["送料"]


def test_kanji_grammar_gets_no_reading() -> None:
    """「下さい」 written in kanji by one question must not make every query's 「ください」
    a content word."""
    pytest.importorskip("pykakasi")
    read = dict(readings.readings(normalize("住所を教えて下さい")))
    assert read.get("じゅうしょ") == "住所"
    assert "ください" not in read


def test_simplified_forms_are_read_as_japanese() -> None:
    """normalize() simplifies 予約 to 予约 and 確認 to 确认: they are read all the same."""
    pytest.importorskip("pykakasi")
    read = dict(readings.readings(normalize("予約を確認したい")))
    assert read["よやく"] == "予约"
    assert read["かくにん"] == "确认"  # also without the verb's kana: 確認し(たい)


def test_chinese_text_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_: str) -> list[tuple[str, str]]:
        raise AssertionError("Chinese text read")

    monkeypatch.setattr(readings, "readings", fail)
    spellings = readings.Spellings()
    spellings.set_entry(1, [normalize("运费怎么算"), normalize("退货运费谁出")])
    assert not spellings and spellings.spelled(normalize("うんひ")) == []


def test_without_pykakasi_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pykakasi", None)  # import fails
    monkeypatch.setattr(readings, "_reader", None)
    monkeypatch.setattr(readings, "_missing", False)
    assert not readings.available()
    assert readings.readings(normalize("送料はいくらですか")) == []


def test_homophones_are_respelled_alike_whatever_order_they_were_learnt() -> None:
    """A process that learnt a word through an edit and one that read the base afresh must
    score a query alike: where the base writes a reading two ways (交換 and 好感 are both
    こうかん), the choice does not depend on which came first."""
    pytest.importorskip("pykakasi")
    from wxbot.qa.readings import Spellings

    first, second = Spellings(), Spellings()
    first.set_entry(1, [normalize("交換できますか")])
    first.set_entry(2, [normalize("好感が持てる")])
    second.set_entry(2, [normalize("好感が持てる")])
    second.set_entry(1, [normalize("交換できますか")])
    asked = normalize("こうかんしたい")
    assert first.respell(asked) == second.respell(asked) != asked
    assert first.spelled(asked) == second.spelled(asked) == ["交换", "好感"]


def test_a_reading_learnt_elsewhere_does_not_change_the_score(tmp_path: Path) -> None:
    """Readings belong to one index, not to the process's shared analyzer: a word another
    base in the process has (or had) must not be read into a query for a base without it,
    or that process would score the query unlike one that read the base afresh."""
    pytest.importorskip("pykakasi")
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade
    from wxbot.qa.text import Analyzer

    def base(name: str, analyzer: Analyzer, with_it: bool) -> KnowledgeBase:
        engine = make_engine(f"sqlite:///{tmp_path / name}.sqlite3")
        upgrade(engine)
        with engine.begin() as conn:
            for question, answer in ENTRIES:
                if with_it or "返品" not in question:
                    writer.create_entry(conn, [question], answer, now=1.0, source="api")
        kb = KnowledgeBase(engine, analyzer=analyzer)
        with engine.connect() as conn:
            kb.refresh_if_stale(conn)
        return kb

    base("other", get_analyzer(), with_it=True)  # teaches 返品 in this process
    shared, fresh = base("shared", get_analyzer(), False), base("fresh", Analyzer(), False)
    asked = "へんぴんしたい"
    assert [ev for _, ev in shared.evidence(asked)] == [ev for _, ev in fresh.evidence(asked)]
