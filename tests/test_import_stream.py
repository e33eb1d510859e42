"""Knowledge files are read as their rows are checked, a block of bytes at a time
(formats.stream): never the whole file, its text or its records at once. What is read must be
exactly what reading the whole file read: the same records, errors, line numbers, encoding
(told from the first block, and read again from the start when a later block proves it
wrong) and whole-file refusals."""

from __future__ import annotations

import codecs
import gc
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wxbot.cli import cli
from wxbot.qa import store
from wxbot.qa.formats import (
    FormatError,
    Parsed,
    Record,
    csv_file,
    decode_text,
    open_file,
    open_stream,
    parse,
    parse_bytes,
    stream,
)
from wxbot.qa.importer import check_parsed

ROOT = Path(__file__).resolve().parent.parent


class Blocks(io.RawIOBase):
    """A file object over bytes made as they are asked for (a generator), which cannot seek:
    ``taken`` counts the pieces made so far."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._rest = b""
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            self._rest = next(self._pieces, b"")
            self.taken += bool(self._rest)
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def cut(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def whole(data: bytes, name: str) -> tuple[object, ...]:
    """What reading the file at once read (the code before streaming, from its pieces)."""
    fmt = {".csv": "csv", ".tsv": "csv", ".txt": "txt", ".jsonl": "jsonl"}[Path(name).suffix]
    try:
        decoded = decode_text(data, name)
        utf16 = decoded.encoding.startswith("UTF-16")
        if fmt == "txt" and csv_file.is_tab_table(decoded.text, utf16):
            fmt = "csv"
        parsed = parse(decoded.text, name, fmt, decoded.encoding)
    except FormatError as exc:
        parsed = Parsed(errors=[str(exc)], name=name)
    return summary(parsed)


def summary(parsed: Parsed) -> tuple[object, ...]:
    records = [(r.questions, r.answer, r.line, r.language) for r in parsed.records]
    return records, parsed.errors, parsed.encoding, parsed.delimiter


QA_CSV = (
    "question,answer,similar\r\n"
    '退货地址在哪,"杭州市文三路 1 号，\r\n三楼前台。",退货寄哪\r\n'
    "运费谁出,质量问题我们承担。\r\n"
    "只有一列\r\n"  # a bad row: its line is said
    '"多行\r问题",答案\r\n'
    "怎么改地址|地址填错了,发货前可在订单页修改。,改地址\n"
    "最后一行没有换行,好的"
)
TITLE_CSV = "常见问题列表\n问题,答案\n营业时间,早九晚五\n"
JSONL = (
    '{"question": "营业时间", "answer": "早九晚五\u2028周末休息"}\r\n'
    "not json\n"
    '{"questions": ["运费", "邮费"], "answer": "包邮", "language": "zh"}\r'
    '{"question": "x"}\n'
)
TXT_CR = "# 注释\rQ: 几点开门\rL: zh\rA: 9 点。\r 第二行\rQ: 在哪\rA\\: 一\\r二\r"
TSV_UTF16 = "问题\t答案\r\n银行卡丢了\t请拨打 95568, 办理挂失。\r\n"
GB_PREFIX = ("一,业\n" * 3).encode("gb18030")  # GB18030 bytes that are valid UTF-8 too

SAMPLES = {
    "qa.csv": QA_CSV.encode(),
    "bom.csv": codecs.BOM_UTF8 + QA_CSV.encode(),
    "gbk.csv": QA_CSV.encode("gbk"),
    "title.csv": TITLE_CSV.encode(),
    "qa.jsonl": JSONL.encode(),
    "cr.txt": TXT_CR.encode(),
    "faq.txt": (ROOT / "knowledge" / "faq.txt").read_bytes()[:6000],
    "utf16.txt": codecs.BOM_UTF16_LE + TSV_UTF16.encode("utf-16-le"),
    "utf16be.tsv": codecs.BOM_UTF16_BE + TSV_UTF16.encode("utf-16-be"),
    # GB18030 whose first bytes read as UTF-8 too: read again from the start
    "late-gb.csv": b"q,a\n" + GB_PREFIX + "营业时间,早九晚五\n".encode("gb18030"),
    # refused as a whole, with the error reading at once gave
    "bad-bom.csv": codecs.BOM_UTF8 + QA_CSV.encode() + b"\n\xff,x\n",
    "bad-utf16.csv": codecs.BOM_UTF16_LE + "q,a\n问,答\n".encode("utf-16-le") + b"\x00\xdc",
    "neither.csv": QA_CSV.encode() + b"\n\xff\xff,x\n",  # UTF-8 reads further: its byte
    "neither-gb.csv": QA_CSV.encode("gbk") + b"\n\x81\x20,x\n",  # GB18030 reads further
    "nul.csv": b"q,a\nx,y\n" + b"a\x00,b\n" + QA_CSV.encode(),
    "nul-gb.csv": QA_CSV.encode("gbk") + b"\na\x00,b\n",
    "nul-then-bad.csv": b"q,a\na\x00,b\n\xff\xff\n",  # not decodable wins over the NUL
    "utf32.csv": codecs.BOM_UTF32_LE + "q,a\n".encode("utf-32-le"),
    "empty.csv": b"",
}


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("block", [1, 3, 7, 64, 0])
@pytest.mark.parametrize("seekable", [True, False])
def test_reading_a_block_at_a_time_reads_what_reading_at_once_read(  # type: ignore[no-untyped-def]
    monkeypatch, name: str, block: int, seekable: bool
) -> None:
    """Every cut: a CRLF, a UTF-8 / GB18030 / UTF-16 character, a BOM across two blocks."""
    if block:
        monkeypatch.setattr(stream, "READ_BLOCK", block)
    data = SAMPLES[name]
    fh = io.BytesIO(data) if seekable else Blocks(cut(data, block or 1 << 20))
    assert summary(open_stream(fh, name).collect()) == whole(data, name)


def test_the_samples_cover_what_they_are_for() -> None:
    """(the comparison above is worth something only if the samples do fail and pass)."""
    read = {name: whole(data, name) for name, data in SAMPLES.items()}
    assert read["late-gb.csv"][2] == "GB18030" and read["late-gb.csv"][0][-1][0] == ["营业时间"]
    assert "not UTF-8 or GB18030" in read["neither.csv"][1][0]
    assert "a NUL character" in read["nul-gb.csv"][1][0]
    assert "not UTF-8 or GB18030" in read["nul-then-bad.csv"][1][0]
    assert "byte order mark" in read["bad-utf16.csv"][1][0]
    assert read["utf16.txt"][3] == "\t" and read["qa.jsonl"][1] and read["qa.csv"][1]


def gb18030_after_ascii(ascii_bytes: int, start: bytes = b"") -> tuple[bytes, int]:
    """A GB18030 CSV whose first ``ascii_bytes`` are ASCII (more than the first block) but
    for ``start`` (rows under the header): only a row far down tells its encoding. Returns it
    and its number of rows (those of ``start`` not counted)."""
    rows = ["question,answer"]
    size = len(rows[0]) + 1
    while size < ascii_bytes:
        rows.append(f"question {len(rows)},answer {len(rows)}")
        size += len(rows[-1]) + 1
    rows += ["银行卡丢了怎么挂失,请立即拨打 95568 办理临时挂失。", "营业时间,早九晚五"]
    data = "\n".join(rows).encode("gb18030") + b"\n"
    header = len(rows[0]) + 1
    return data[:header] + start + data[header:], len(rows) - 1


def test_a_gb18030_file_whose_first_block_is_ascii(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data, count = gb18030_after_ascii(stream.READ_BLOCK + 200_000)
    assert data[: stream.READ_BLOCK].isascii()
    path = tmp_path / "faq.csv"
    path.write_bytes(data)
    parsed = open_file(str(path)).collect()
    assert parsed.errors == [] and parsed.encoding == "GB18030"
    assert len(parsed.records) == count  # the ASCII rows once, not once per reading
    assert parsed.records[-2].questions == ["银行卡丢了怎么挂失"]
    assert parsed.records[-2].line == count  # (the header is line 1)
    assert parsed.records[-1].answer == "早九晚五"
    # the checked rows read before the file was read again are forgotten, not duplicates
    streamed = open_stream(Blocks(cut(data, 65536)), "faq.csv")
    rows, errors = check_parsed([streamed])
    assert errors == [] and len(rows) == count and streamed.encoding == "GB18030"


def test_a_gb18030_file_told_late_is_imported(app, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(stream, "READ_BLOCK", 4096)
    data, count = gb18030_after_ascii(50_000)
    path = tmp_path / "faq.csv"
    path.write_bytes(data)
    result = app.test_cli_runner().invoke(cli, ["kb", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"read {path} as GB18030" in result.output and f"added {count}," in result.output
    engine = app.extensions["wxbot.engine"]
    with engine.connect() as conn:
        assert store.counts(conn)["entries"] == count
        entry = store.find_entry(conn, "银行卡丢了怎么挂失")
    assert entry is not None and entry.answer == "请立即拨打 95568 办理临时挂失。"


def multiline_csv(rows: int, bad_at: int) -> tuple[bytes, int]:
    """A CSV whose answers hold quoted line breaks (CRLF, CR, LF), with one bad row (three
    columns) as row ``bad_at``; returns it and the line that row starts on."""
    parts = ["question,answer\r\n"]
    for i in range(1, rows + 1):
        if i == bad_at:
            bad_line = len(re.findall(r"\r\n|\r|\n", "".join(parts))) + 1
            parts.append(f"第{i}个问题,答案,多出来的一列\r\n")
            continue
        brk = ("\r\n", "\r", "\n")[i % 3]
        answer = f'第{i}个答案的第一行{brk}第二行，有逗号, 也有引号 "" 和 \t 制表符'
        parts.append(f'第{i}个问题,"{answer}"\r\n')
    return "".join(parts).encode(), bad_line


@pytest.mark.parametrize("block", [4099, 0])
def test_a_bad_row_far_into_a_large_file_names_its_line(app, tmp_path, monkeypatch, block) -> None:  # type: ignore[no-untyped-def]
    if block:
        monkeypatch.setattr(stream, "READ_BLOCK", block)
    data, bad_line = multiline_csv(30_000, bad_at=29_000)
    assert len(data) > 2 * stream.READ_BLOCK
    path = tmp_path / "faq.csv"
    path.write_bytes(data)
    result = app.test_cli_runner().invoke(cli, ["kb", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:{bad_line}: expected 2 columns (question,answer), found 3" in result.output
    assert "nothing written" in result.output  # all or nothing
    with app.extensions["wxbot.engine"].connect() as conn:
        assert store.counts(conn)["entries"] == 0
    assert whole(data, "faq.csv")[1] == [
        f"faq.csv:{bad_line}: expected 2 columns (question,answer), found 3; quote answers "
        "that contain commas"
    ]


@pytest.mark.parametrize("fmt", ["txt", "jsonl"])
def test_line_numbers_far_into_text_and_json_lines(tmp_path, monkeypatch, fmt: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(stream, "READ_BLOCK", 1000)
    if fmt == "txt":
        blocks = [f"Q: 问题{i}\r\nA: 答案{i}\r\n第二行\r\n" for i in range(5000)]
        text, want = "".join(blocks) + "Q: 孤零零的问题\r\n", "question(s) without an A: line"
    else:
        lines = [f'{{"question": "问题{i}", "answer": "答案{i}"}}\r\n' for i in range(5000)]
        text, want = "".join(lines) + "\r\n[1]\r\n", "expected a JSON object"
    path = tmp_path / f"faq.{fmt}"
    path.write_bytes(text.encode())
    parsed = open_file(str(path)).collect()
    line = text.count("\n")
    assert len(parsed.records) == 5000 and parsed.errors[0].startswith(f"{path}:{line}: {want}")
    assert parsed.records[-1].line == (5000 - 1) * (3 if fmt == "txt" else 1) + 1


def test_the_file_is_read_as_its_rows_are_taken() -> None:
    """A file object fed by a generator: the first row is there after the first pieces of
    the file, not after all of them; the rest is read as the rows are taken."""
    pieces = 0

    def made() -> Iterator[bytes]:
        nonlocal pieces
        yield "问题,答案\n".encode()
        for i in range(20_000):
            pieces += 1
            yield f"第{i}个问题,第{i}个答案\n".encode()

    source = Blocks(made())
    parsed = open_stream(source, "faq.csv")
    rows = parsed.entries()
    first = next(rows)
    assert isinstance(first, Record) and first.questions == ["第0个问题"]
    assert source.taken < 20_000 // 100  # a block's worth, not the file
    taken_then = source.taken
    for _ in range(5_000):
        next(rows)
    assert taken_then < source.taken < 20_000  # read on as the rows are taken
    assert len(list(rows)) == 20_000 - 5_001 and pieces == 20_000
    assert parsed.errors == [] and parsed.encoding == "UTF-8"


def test_checked_rows_keep_nothing_of_the_file_read() -> None:
    """The import keeps its checked rows (questions, keys, answer, where), not the records
    they were read from: those were a third of the memory a large file took."""

    def records() -> int:
        gc.collect()
        return sum(isinstance(o, Record) for o in gc.get_objects())

    data = "".join(f"第{i}个问题,第{i}个答案\n" for i in range(3000)).encode()
    before = records()
    rows, errors = check_parsed([parse_bytes(data, "faq.csv")])
    assert errors == [] and len(rows) == 3000
    assert records() == before
    last = rows[-1]
    assert (last.file, last.line, last.questions, last.answer) == (
        "faq.csv",
        3000,
        ["第2999个问题"],
        "第2999个答案",
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_told_late_is_read_again_from_its_copy(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A pipe can be read once: what was read of it is copied, and read from there again."""
    monkeypatch.setattr(stream, "READ_BLOCK", 4096)
    data, count = gb18030_after_ascii(40_000, GB_PREFIX)  # a start UTF-8 too, not ASCII
    fifo = tmp_path / "faq.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            for piece in cut(data, 1000):
                fh.write(piece)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    parsed = open_file(str(fifo), "csv").collect()
    thread.join(10)
    assert parsed.errors == [] and parsed.encoding == "GB18030"
    assert [(r.questions, r.answer) for r in parsed.records[:4]] == [
        (["一"], "业"),
        (["一"], "业"),
        (["一"], "业"),
        (["question 1"], "answer 1"),
    ]
    assert len(parsed.records) == 3 + count
    assert parsed.records[-1].answer == "早九晚五"
