"""Files as operators bring them from Excel on Chinese Windows: a header with an extra column
(备注) or trailing empty cells, a title row above the header, a header pasted in twice, merged
answer and question cells, rows of spaces, files with a header and nothing under it; a text
export keeping a question's tabs; progress while a large file is checked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl

from wxbot.qa import store
from wxbot.qa.cli import kb
from wxbot.qa.formats import Item, parse_bytes, write
from wxbot.qa.importer import import_files

HELP = "name the columns question, answer, similar, language"


def parsed(data: bytes, name: str) -> tuple[list[tuple[list[object], object, int]], list[str]]:
    out = parse_bytes(data, name)
    return [(r.questions, r.answer, r.line) for r in out.records], out.errors


def xlsx(*rows: list[Any], merge: tuple[str, ...] = ()) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in merge:
        sheet.merge_cells(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# -- CSV headers -------------------------------------------------------------------------------


def test_an_unknown_header_column_is_named_once() -> None:
    # Before: every line "expected 2 columns (question,answer), found 3; quote answers that
    # contain commas", the header line included, and 备注 named nowhere.
    data = "问题,答案,备注\n退款,在订单页申请,内部用\n退货,七天无理由,\n".encode("gbk")
    records, errors = parsed(data, "faq.csv")
    assert records == []
    assert len(errors) == 1
    assert errors[0].startswith("faq.csv:1: column 3 of the header row has unknown column '备注'")
    assert HELP in errors[0]


def test_a_header_column_without_a_name_is_named() -> None:
    records, errors = parsed("question\t\tanswer\n退款\t\t好的\n".encode(), "faq.tsv")
    assert (records, len(errors)) == ([], 1)
    assert errors[0].startswith("faq.tsv:1: column 2 of the header row has no name")


def test_a_header_with_trailing_empty_cells_is_a_header() -> None:
    # Excel writes "问题,答案,," when cells further right were ever used
    data = "问题,答案,,\r\n退款,在订单页申请,,\r\n".encode("gbk")
    assert parsed(data, "faq.csv") == ([(["退款"], "在订单页申请", 2)], [])


def test_a_title_row_above_the_header_is_said_so() -> None:
    data = "常见问题列表,,\r\n\r\n问题,答案,相似问法\r\n退款,好的,怎么退款\r\n".encode("gbk")
    records, errors = parsed(data, "faq.csv")
    assert records == []
    assert errors == [
        "faq.csv:3: this is the header row, but the header must be the first row: delete the"
        " line(s) above it (a title?)"
    ]


def test_a_header_row_further_down_is_not_an_entry() -> None:
    # two exports pasted together: 「问题」 -> 「答案」 was imported as an entry
    data = "问题,答案\n退款,好的\n问题,答案\n退货,可以\n".encode()
    records, errors = parsed(data, "faq.csv")
    assert records == [(["退款"], "好的", 2), (["退货"], "可以", 4)]
    assert errors == ["faq.csv:3: a header row below the first row; delete it"]


# -- files without entries ---------------------------------------------------------------------


def test_files_with_a_header_or_comments_only_are_refused(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    files = {
        "header.csv": "问题,答案,相似问法\r\n".encode("gbk"),
        "comments.txt": b"# nothing yet\n",
        "header.xlsx": xlsx(["question", "answer"]),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    runner = app.test_cli_runner()
    for name in files:
        result = runner.invoke(kb, ["import", str(tmp_path / name)])
        assert result.exit_code == 1, result.output  # was 0, "imported: added 0"
        assert f"{tmp_path / name}: no entries in the file" in result.output
        assert "nothing written" in result.output
    # among good files, with --skip-bad, it is one rejected file
    good = tmp_path / "good.csv"
    good.write_text("问题,答案\n退款,好的\n", encoding="utf-8")
    report = import_files(
        engine, [str(tmp_path / "header.csv"), str(good)], now=1.0e9, skip_bad=True
    )
    assert (report.added, report.rejected, report.written) == (1, 1, True)


# -- text export -------------------------------------------------------------------------------


def test_a_text_export_keeps_a_questions_tabs_and_spaces() -> None:
    items = [Item(["制表\t符  两个空格\u3000全角", "second\nline"], "答案", None)]
    out = io.StringIO()
    write(items, "txt", out)
    records, errors = parsed(out.getvalue().encode(), "faq.txt")
    assert errors == []
    # (a line break cannot be on a Q: line: it is a space)
    assert records == [(["制表\t符  两个空格\u3000全角", "second line"], "答案", 1)]


# -- Excel -------------------------------------------------------------------------------------


def test_a_row_of_spaces_is_blank_as_in_csv() -> None:
    data = xlsx(["问题", "答案"], ["退款", "好的"], ["  ", " "], ["退货", "可以"])
    assert parsed(data, "faq.xlsx") == ([(["退款"], "好的", 2), (["退货"], "可以", 4)], [])


def test_an_answer_merged_over_rows_is_every_rows_answer() -> None:
    # Before: "faq.xlsx:3: the answer is empty", although the operator sees it filled
    data = xlsx(
        ["问题", "答案", "语言"],
        ["退款", "请在订单页申请", "zh"],
        ["退货", None, None],
        ["Refund", "Apply on the order page", "en"],
        merge=("B2:B3", "C2:C3"),
    )
    assert parse_bytes(data, "faq.xlsx").errors == []
    assert [(r.questions, r.answer, r.language) for r in parse_bytes(data, "faq.xlsx").records] == [
        (["退款"], "请在订单页申请", "zh"),
        (["退货"], "请在订单页申请", "zh"),
        (["Refund"], "Apply on the order page", "en"),
    ]


def test_rows_inside_a_merged_question_are_one_entry() -> None:
    # one entry laid out over three rows: question and answer merged, a similar question a row
    data = xlsx(
        ["问题", "答案", "相似问法"],
        ["退款", "请在订单页申请", "怎么退款"],
        [None, None, "如何退款"],
        [None, None, "退钱|钱怎么退"],
        ["营业时间", "9:00-17:00", None],
        merge=("A2:A4", "B2:B4"),
    )
    assert parsed(data, "faq.xlsx") == (
        [
            (["退款", "怎么退款", "如何退款", "退钱", "钱怎么退"], "请在订单页申请", 2),
            (["营业时间"], "9:00-17:00", 5),
        ],
        [],
    )


def test_a_row_inside_a_merged_question_with_its_own_answer_is_bad() -> None:
    data = xlsx(
        ["问题", "答案", "相似问法"],
        ["退款", "请在订单页申请", None],
        [None, "另一个答案", "如何退款"],
        merge=("A2:A3",),
    )
    records, errors = parsed(data, "faq.xlsx")
    assert records == [(["退款"], "请在订单页申请", 2)]
    assert errors == [
        "faq.xlsx:3: inside the merged question cell of row 2 but with an answer of its own;"
        " merge its answer cell with row 2's too, or unmerge the question"
    ]


# -- progress ----------------------------------------------------------------------------------


def test_the_check_reports_progress_before_the_writes(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # 200k rows were ~30 s of checking with the bar at "0 rows", then a count of database
    # rows (entries + questions) with no total
    n = 4_500
    path = tmp_path / "big.csv"
    path.write_text(
        "问题,答案,相似问法\n" + "".join(f"问题{i},答案{i},说法{i}\n" for i in range(n)),
        encoding="gbk",
    )
    events: list[tuple[str, int]] = []
    report = import_files(
        app.extensions["wxbot.engine"],
        [str(path)],
        now=1.0e9,
        checked=lambda k: events.append(("checked", k)),
        planned=lambda total: events.append(("planned", total)),
        progress=lambda k, _what: events.append(("written", k)),
    )
    assert report.added == n
    kinds = [kind for kind, _ in events]
    assert kinds.index("planned") == kinds.count("checked") > 1  # checks first, then the plan
    assert sum(k for kind, k in events if kind == "checked") == n
    total = dict(events)["planned"]
    assert total == n + 2 * n  # entries and their questions
    assert sum(k for kind, k in events if kind == "written") == total
    with app.extensions["wxbot.engine"].connect() as conn:
        assert store.count_entries(conn) == n
