"""Knowledge files in the encodings Chinese operators' tools save them in: GBK/GB18030 (Excel's
「CSV（逗号分隔）」 on a Chinese Windows), UTF-8 with or without a BOM, and UTF-16 with a BOM
(Excel's 「Unicode 文本」: tab-separated, named .txt). Which one was read is said in the import
summary (CLI and console); a file in none of them is refused naming its line and byte."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pytest

from tests.console_helpers import (
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf,
    login,
    wait_for_job,
)
from tests.helpers import content, say
from wxbot.qa import store
from wxbot.qa.formats import parse_bytes
from wxbot.qa.importer import import_files

# A sheet as operators make them: a header, similar questions, a comma inside an answer.
ROWS = [
    ("问题", "答案", "相似问法"),
    ("银行卡丢了怎么挂失", "请立即拨打 95568, 办理临时挂失。", "卡不见了|借记卡丢了"),
    ("营业时间", "工作日 9:00-17:00，周末休息。", ""),
]
CSV = "\r\n".join(",".join(f'"{c}"' if "," in c else c for c in row) for row in ROWS) + "\r\n"
TSV = "\r\n".join("\t".join(row) for row in ROWS) + "\r\n"  # as Excel's Unicode text writes it
WANT = [
    (["银行卡丢了怎么挂失", "卡不见了", "借记卡丢了"], "请立即拨打 95568, 办理临时挂失。"),
    (["营业时间"], "工作日 9:00-17:00，周末休息。"),
]


def utf16(text: str, order: str = "le") -> bytes:
    bom = codecs.BOM_UTF16_LE if order == "le" else codecs.BOM_UTF16_BE
    return bom + text.encode(f"utf-16-{order}")


def records(data: bytes, name: str) -> list[tuple[list[object], object]]:
    parsed = parse_bytes(data, name)
    assert parsed.errors == [], parsed.errors
    return [(r.questions, r.answer) for r in parsed.records]


# -- decoding: no database ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, name, read_as",
    [
        (CSV.encode("utf-8"), "faq.csv", "UTF-8"),
        (codecs.BOM_UTF8 + CSV.encode("utf-8"), "faq.csv", "UTF-8 with BOM"),
        (CSV.encode("gbk"), "faq.csv", "GB18030"),
        (CSV.encode("gb18030"), "faq.csv", "GB18030"),
        (utf16(CSV, "le"), "faq.csv", "UTF-16 LE"),
        (utf16(CSV, "be"), "faq.csv", "UTF-16 BE"),
        (utf16(TSV, "le"), "faq.csv", "UTF-16 LE, tab-separated"),
        (utf16(TSV, "le"), "faq.txt", "UTF-16 LE, tab-separated"),  # Excel names it .txt
        (TSV.encode("gbk"), "faq.tsv", "GB18030, tab-separated"),
        (TSV.encode("utf-8"), "faq.csv", "UTF-8, tab-separated"),
    ],
)
def test_every_encoding_reads_the_same_entries(data, name, read_as) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(data, name)
    assert parsed.errors == []
    assert [(r.questions, r.answer, r.line) for r in parsed.records] == [
        (q, a, line) for (q, a), line in zip(WANT, (2, 3), strict=True)
    ]
    assert parsed.read_as == read_as


def test_characters_outside_gbk_read_from_gb18030() -> None:
    # 㐀 (CJK extension A) and € exist in GB18030 only, as four-byte sequences
    data = "问题,答案\n㐀是什么字,扩展 A 区的字，价格 5 €。\n".encode("gb18030")
    with pytest.raises(UnicodeEncodeError):
        "㐀".encode("gbk")
    assert records(data, "a.csv") == [(["㐀是什么字"], "扩展 A 区的字，价格 5 €。")]


def test_bytes_that_are_valid_utf8_are_always_utf8() -> None:
    # "中文" in UTF-8 (e4 b8 ad e6 96 87) is also valid GB18030 ("涓枃"): UTF-8 wins
    data = "中文问题,中文答案\n".encode()
    assert data.decode("gb18030") != data.decode("utf-8")
    parsed = parse_bytes(data, "a.csv")
    assert parsed.encoding == "UTF-8"
    assert [(r.questions, r.answer) for r in parsed.records] == [(["中文问题"], "中文答案")]


@pytest.mark.parametrize(
    "name, text",
    [
        ("a.jsonl", '{"questions": ["怎么退款", "如何退款"], "answer": "在订单页申请退款。"}\n'),
        ("a.txt", "# 注释\nQ: 怎么退款\nQ: 如何退款\nA: 在订单页申请退款。\n"),
    ],
)
@pytest.mark.parametrize(
    "encode",
    [lambda t: t.encode("gbk"), lambda t: utf16(t), lambda t: utf16(t, "be")],
    ids=["gbk", "utf16le", "utf16be"],
)
def test_jsonl_and_txt_in_every_encoding(name, text, encode) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(encode(text), name)
    assert parsed.errors == [] and parsed.delimiter == ""
    assert [(r.questions, r.answer) for r in parsed.records] == [
        (["怎么退款", "如何退款"], "在订单页申请退款。")
    ]


def test_a_utf16_qa_text_file_stays_a_qa_file() -> None:
    # (a .txt in UTF-16 is taken for Excel's tab-separated table only if it looks like one)
    text = "Q: 怎么退款\tTAB\nA: 在订单页申请退款。\n"
    assert records(utf16(text), "a.txt") == [(["怎么退款\tTAB"], "在订单页申请退款。")]


def test_excel_unicode_text_with_quoted_cells() -> None:
    """Excel quotes a cell holding a tab, a line break or a quote, doubling the quotes."""
    text = (
        '问题\t答案\r\n退货地址\t"杭州市\n文三路 1 号（""总仓""）"\r\n有发票吗\t"有,\t电子发票"\r\n'
    )
    assert records(utf16(text), "faq.txt") == [
        (["退货地址"], '杭州市\n文三路 1 号（"总仓"）'),
        (["有发票吗"], "有,\t电子发票"),
    ]


@pytest.mark.parametrize(
    "text, name, delimiter, question",
    [
        ('怎么退款,"在订单页\t申请"\n', "a.csv", ",", "怎么退款"),  # a tab inside a CSV cell
        ("怎么退款\t在订单页申请\n", "a.csv", "\t", "怎么退款"),  # no comma: tabs
        # both, no header, not UTF-16: commas (the documented rule; .tsv or a header says tabs)
        ("怎么退款\t在订单页申请, 三天到账\n", "a.csv", ",", "怎么退款\t在订单页申请"),
        ("怎么退款\t在订单页申请, 三天到账\n", "a.tsv", "\t", "怎么退款"),
        ("question\tanswer\n怎么退款\t在订单页申请, 三天到账\n", "a.csv", "\t", "怎么退款"),
        ('question,answer\n怎么退款,"在订单页\t申请"\n', "a.csv", ",", "怎么退款"),
    ],
)
def test_the_delimiter_is_decided_by_the_first_row(text, name, delimiter, question) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(text.encode(), name)
    assert (parsed.errors, parsed.delimiter) == ([], delimiter)
    assert parsed.records[0].questions == [question]


def test_a_headerless_utf16_table_with_commas_is_tab_separated() -> None:
    parsed = parse_bytes(utf16("怎么退款\t在订单页申请, 三天到账\r\n"), "a.txt")
    assert (parsed.errors, parsed.delimiter) == ([], "\t")
    assert parsed.records[0].answer == "在订单页申请, 三天到账"


@pytest.mark.parametrize(
    "data, error",
    [
        # neither encoding: a byte 0xff on line 3 (after plain ASCII lines)
        (
            b"q1,a1\nq2,a2\nq3,\xff\n",
            "a.csv:3: not UTF-8 or GB18030 (byte 15); save the file as UTF-8",
        ),
        # GBK with one damaged byte on line 3: the line where GB18030 stopped, not UTF-8
        (
            "问题,答案\n甲,乙\n".encode("gbk") + b"\xff\n",
            "a.csv:3: not UTF-8 or GB18030 (byte 16); save the file as UTF-8",
        ),
        (
            codecs.BOM_UTF8 + b"q,a\n\xff\n",
            "a.csv:2: not UTF-8 (byte 7) although it starts with a UTF-8 byte order mark",
        ),
        (
            utf16("q,a\n") + b"\x00",  # an odd byte left over
            "a.csv:2: not UTF-16 LE (byte 10) although it starts with a UTF-16 LE byte order",
        ),
        (codecs.BOM_UTF32_LE + "q,a\n".encode("utf-32-le"), "a.csv:1: UTF-32 text"),
        ("q,a\n".encode("utf-16-le"), "a.csv:1: a NUL character (is it UTF-16 without a byte"),
    ],
)
def test_a_file_in_no_known_encoding_is_refused_with_line_and_byte(data, error) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(data, "a.csv")
    assert parsed.records == [] and len(parsed.errors) == 1
    assert parsed.errors[0].startswith(error), parsed.errors


# -- importing: both databases -----------------------------------------------------------------


def _entries(app) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return sorted((a, q) for a, q in store.load_entries(conn).values())


def _put(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_cli_imports_gbk_and_excel_unicode_text_and_says_how(app, bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    runner = app.test_cli_runner()
    gbk = _put(tmp_path, "gbk.csv", CSV.encode("gbk"))
    result = runner.invoke(kb, ["import", gbk])
    assert result.exit_code == 0, result.output
    assert f"read {gbk} as GB18030\n" in result.output
    assert "imported: added 2, updated 0, unchanged 0, rejected 0" in result.output
    assert _entries(app) == sorted((a, q) for q, a in WANT)
    assert content(say(bot, "o_enc", "卡不见了")).startswith("请立即拨打 95568")

    # the same table saved as Excel's Unicode text (.txt, UTF-16, tabs): nothing changes
    unicode_text = _put(tmp_path, "faq.txt", utf16(TSV))
    again = runner.invoke(kb, ["import", unicode_text])
    assert again.exit_code == 0, again.output
    assert f"read {unicode_text} as UTF-16 LE, tab-separated" in again.output
    assert "added 0, updated 0, unchanged 2, rejected 0" in again.output


def test_cli_synonyms_file_in_gbk(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    path = _put(tmp_path, "my_synonyms.txt", "挂失 冻结卡\n".encode("gbk"))
    result = app.test_cli_runner().invoke(kb, ["import", path])
    assert result.exit_code == 0, result.output
    assert f"read {path} as GB18030 (synonym groups)" in result.output
    assert "synonym groups: added 1" in result.output


def test_a_refused_file_writes_nothing_and_keeps_what_is_stored(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    runner = app.test_cli_runner()
    good = _put(tmp_path, "good.csv", CSV.encode("utf-8"))
    assert runner.invoke(kb, ["import", good]).exit_code == 0
    before = _entries(app)
    changed = CSV.replace("工作日", "每天").encode("gbk") + b"\xff\n"
    bad = _put(tmp_path, "bad.csv", changed)
    result = runner.invoke(kb, ["import", bad])
    assert result.exit_code == 1
    assert f"{bad}:4: not UTF-8 or GB18030" in result.output
    assert "nothing written" in result.output and "Traceback" not in result.output
    assert _entries(app) == before


def test_import_files_reports_each_files_encoding(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = _put(tmp_path, "a.csv", b"q1,a1\n")
    b = _put(tmp_path, "b.csv", "问一,答一\n".encode("gbk"))
    report = import_files(app.extensions["wxbot.engine"], [a, b], now=1.0e9)
    assert report.written and report.added == 2
    assert report.read_as == [(a, "UTF-8"), (b, "GB18030")]


# -- the console: the same reader behind the upload --------------------------------------------


def _upload(client, name: str, data: bytes):  # type: ignore[no-untyped-def]
    form = {"csrf_token": csrf(client, "/admin/import"), "file": (io.BytesIO(data), name)}
    return client.post("/admin/import", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize(
    "name, data, shown",
    [
        ("gbk.csv", CSV.encode("gbk"), "读取为：GB18030（GBK） 编码"),
        ("faq.txt", utf16(TSV), "读取为：UTF-16 LE 编码，制表符分隔"),
        ("bom.csv", codecs.BOM_UTF8 + CSV.encode(), "读取为：UTF-8（带 BOM） 编码"),
    ],
)
def test_console_upload_in_other_encodings(app, client, bot, name, data, shown) -> None:  # type: ignore[no-untyped-def]
    login(client)
    resp = _upload(client, name, data)
    assert resp.status_code == 303
    job = resp.headers["Location"]
    wait_for_job(client, job, ("checked",))
    page = client.get(job).text
    assert shown in page
    assert '<td id="r-added">2</td>' in page and '<td id="r-rejected" class="">0</td>' in page
    assert _entries(app) == []  # the check writes nothing
    client.post(job + "/commit", data={"csrf_token": csrf(client, job)})
    assert wait_for_job(client, job, ("done", "failed"))["status"] == "done"
    assert _entries(app) == sorted((a, q) for q, a in WANT)
    assert content(say(bot, "o_console", "借记卡丢了")).startswith("请立即拨打 95568")


def test_console_upload_in_no_known_encoding_lists_the_line(app, client) -> None:  # type: ignore[no-untyped-def]
    login(client)
    job = _upload(client, "bad.csv", b"q1,a1\nq2,\xff\xff\n").headers["Location"]
    wait_for_job(client, job, ("checked",))
    page = client.get(job).text
    assert (
        "<td>2</td><td>既不是 UTF-8 也不是 GBK/GB18030 编码（第 9 字节）：请另存为 UTF-8。</td>"
        in page
    )
    assert "没有需要写入的行" in page and "读取为" not in page
