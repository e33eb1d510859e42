"""Batch import and export: every format, every bad-row case, idempotence, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.helpers import content, say
from wxbot.qa import store, unanswered
from wxbot.qa.formats import parse_file
from wxbot.qa.importer import import_files
from wxbot.qa.models import KbEntry

CSV = (
    'question,answer\n怎么退款|如何退款,在订单页申请退款。\n运费多少,"满 59 元包邮, 否则 8 元。"\n'
)
JSONL = (
    '{"question": "怎么退款", "answer": "在订单页申请退款。"}\n'
    "\n"
    '{"questions": ["运费多少", "邮费多少"], "answer": "满 59 元包邮。"}\n'
)
TXT = """# comment
Q: 怎么退款
Q: 如何退款
A: 在订单页申请退款。
第二行。

Q: 运费多少
A: 满 59 元包邮。
"""


def write(tmp_path: Path, name: str, text: str, bom: bool = False) -> str:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return str(path)


def run(app, *paths: str, **kw):  # type: ignore[no-untyped-def]
    return import_files(app.extensions["wxbot.engine"], list(paths), now=1.0e9, **kw)


def entries(app) -> dict[int, tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return store.load_entries(conn)


# -- parsing: no database ----------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("name, text", [("a.csv", CSV), ("a.jsonl", JSONL), ("a.txt", TXT)])
def test_every_format_parses(tmp_path, name, text, bom) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_file(write(tmp_path, name, text, bom))
    assert parsed.errors == []
    assert len(parsed.records) == 2
    assert parsed.records[0].questions[0] == "怎么退款"


def test_txt_answers_run_until_the_next_question(tmp_path) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_file(write(tmp_path, "a.txt", TXT))
    assert parsed.records[0].questions == ["怎么退款", "如何退款"]
    assert parsed.records[0].answer == "在订单页申请退款。\n第二行。"
    assert parsed.records[1].line == 7


BAD = [
    ("a.csv", "question,answer\n只有一列\n", "a.csv:2: expected 2 columns (question,answer)"),
    ("a.csv", "q,a,extra\n", "a.csv:1: expected 2 columns (question,answer), found 3"),
    ("a.csv", "q,\n", "a.csv:1: the answer is empty"),
    ("a.csv", ",a\n", "a.csv:1: the question is empty"),
    ("a.csv", "？？,a\n", "has no letters or digits"),
    ("a.csv", "q||r,a\n", "a.csv:1: the question is empty"),
    ("a.csv", "q" * 501 + ",a\n", "longer than 500"),
    ("a.csv", '"unclosed,a\n', "a.csv:1:"),
    ("a.jsonl", "{bad json}\n", "a.jsonl:1: invalid JSON"),
    ("a.jsonl", "[1, 2]\n", "a.jsonl:1: expected a JSON object"),
    ("a.jsonl", '{"question": "q"}\n', 'a.jsonl:1: missing "answer"'),
    ("a.jsonl", '{"answer": "a"}\n', 'a.jsonl:1: give exactly one of "question" or "questions"'),
    ("a.jsonl", '{"questions": "q", "answer": "a"}\n', '"questions" must be a list'),
    ("a.jsonl", '{"question": 5, "answer": "a"}\n', "a question must be a string"),
    ("a.jsonl", '{"question": "q", "answer": "a", "x": 1}\n', "unknown field(s) x"),
    ("a.txt", "A: 没有问题\n", "a.txt:1: A: line without a Q: line"),
    ("a.txt", "Q: 没有答案\n", "a.txt:1: question(s) without an A: line"),
    ("a.txt", "随便一行\n", "a.txt:1: unexpected text outside a Q:/A: block"),
    ("a.txt", "Q: 问\n插一句\nA: 答\n", "a.txt:2: unexpected text between Q: and A:"),
    ("a.txt", "Q: 问\nA:\n", "a.txt:1: the answer is empty"),
    ("a.csv", "q,a\nq？,b\n", "a.csv:2: the question 'q？' is already at "),
]


@pytest.mark.parametrize("name, text, reason", BAD)
def test_every_bad_row_is_reported_with_file_and_line(tmp_path, name, text, reason) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.importer import read_files

    path = write(tmp_path, name, text)
    _, errors = read_files([path])
    assert any(reason in e for e in errors), errors
    assert all(e.startswith(path) for e in errors)


def test_not_utf8_and_unknown_extension_and_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.csv"  # neither UTF-8 nor GB18030 (GBK files are read)
    broken.write_bytes(b"q,\xff\n")
    assert "broken.csv:1: not UTF-8 or GB18030" in parse_file(str(broken)).errors[0]
    assert "cannot tell the format" in parse_file(write(tmp_path, "a.ods", "x")).errors[0]
    assert "cannot read" in parse_file(str(tmp_path / "missing.csv")).errors[0]


# -- importing: both databases -----------------------------------------------------------------


@pytest.mark.parametrize("name, text", [("a.csv", CSV), ("a.jsonl", JSONL), ("a.txt", TXT)])
def test_import_then_answer(app, bot, tmp_path, name, text) -> None:  # type: ignore[no-untyped-def]
    report = run(app, write(tmp_path, name, text, bom=True))
    assert report.written and (report.added, report.rejected) == (2, 0)
    assert content(say(bot, "o_u", "如何退款" if name != "a.jsonl" else "怎么退款")).startswith(
        "在订单页申请退款。"
    )
    with app.extensions["wxbot.engine"].connect() as conn:
        row = conn.execute(select(KbEntry.source, KbEntry.source_ref)).first()
    assert tuple(row) == ("import", name)


def test_reimport_is_idempotent_and_updates_what_changed(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "a.csv", CSV)
    run(app, path)
    before = entries(app)
    again = run(app, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert entries(app) == before
    changed = write(
        tmp_path,
        "b.csv",
        '怎么退款,新的退款说明。\n运费多少|邮费多少,"满 59 元包邮, 否则 8 元。"\n新问题,新答案\n',
    )
    report = run(app, changed)
    assert (report.added, report.updated, report.unchanged) == (1, 2, 0)
    after = entries(app)
    assert len(after) == 3
    refund = next(v for v in after.values() if "怎么退款" in v[1])
    assert refund == ("新的退款说明。", ["怎么退款", "如何退款"])  # questions are kept
    freight = next(v for v in after.values() if "运费多少" in v[1])
    assert freight[1] == ["运费多少", "邮费多少"]  # a new alias joins the entry


def test_bad_rows_mean_nothing_is_written(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path, "good.csv", CSV)
    bad = write(tmp_path, "bad.txt", "Q: 好问题\nA: 好答案\n\nQ: 没有答案\n")
    report = run(app, good, bad)
    assert not report.written and report.rejected == 1
    assert report.errors == [f"{bad}:4: question(s) without an A: line"]
    assert entries(app) == {}
    report = run(app, good, bad, skip_bad=True)
    assert report.written and (report.added, report.rejected) == (3, 1)


def test_dry_run_counts_but_writes_nothing(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = run(app, write(tmp_path, "a.csv", CSV), dry_run=True)
    assert (report.written, report.added) == (False, 2)
    assert entries(app) == {}


def test_rows_spanning_two_existing_entries_are_rejected(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(app, write(tmp_path, "a.csv", "甲,1\n乙,2\n"))
    path = write(tmp_path, "b.csv", "甲|乙,3\n丙,4\n")
    report = run(app, path)
    assert not report.written and "belong to different entries" in report.errors[0]
    assert report.errors[0].startswith(f"{path}:1:")
    report = run(app, path, skip_bad=True)
    assert report.written and (report.added, report.rejected) == (1, 1)


def test_import_takes_questions_off_the_unanswered_list(app, bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "发票怎么开")
    with app.extensions["wxbot.engine"].connect() as conn:
        assert unanswered.list_unanswered(conn)[0] == 1
    run(app, write(tmp_path, "a.csv", "发票怎么开？,在订单页开。\n"))
    with app.extensions["wxbot.engine"].connect() as conn:
        assert unanswered.list_unanswered(conn)[0] == 0


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_import_and_export_round_trip(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    runner = app.test_cli_runner()
    result = runner.invoke(kb, ["import", write(tmp_path, "a.txt", TXT)])
    assert result.exit_code == 0, result.output
    assert "imported: added 2, updated 0, unchanged 0, rejected 0" in result.output
    for fmt in ("csv", "jsonl", "txt"):
        out = str(tmp_path / f"out.{fmt}")
        result = runner.invoke(kb, ["export", out])
        assert result.exit_code == 0 and "exported 2 entries" in result.output
        again = runner.invoke(kb, ["import", out])
        assert "added 0, updated 0, unchanged 2" in again.output, (fmt, again.output)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {
        "questions": ["怎么退款", "如何退款"],
        "answer": "在订单页申请退款。\n第二行。",
    }


def test_cli_bad_file_exits_non_zero_and_lists_rows(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    runner = app.test_cli_runner()
    path = write(tmp_path, "bad.csv", "q,a\n只有一列\n")
    result = runner.invoke(kb, ["import", path])
    assert result.exit_code == 1
    assert f"{path}:2: expected 2 columns" in result.output
    assert "nothing written" in result.output
    result = runner.invoke(kb, ["import", "--skip-bad", path])
    assert result.exit_code == 0 and "added 1" in result.output and "rejected 1" in result.output
    result = runner.invoke(kb, ["import", "--dry-run", write(tmp_path, "c.csv", "x,y\n")])
    assert result.exit_code == 0 and "dry run" in result.output
    assert runner.invoke(kb, ["export", str(tmp_path / "out.ods")]).exit_code == 2
    result = runner.invoke(kb, ["export", str(tmp_path / "no" / "such" / "dir.csv")])
    assert result.exit_code == 1 and "cannot write" in result.output
    result = runner.invoke(kb, ["import", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_starter_faq_is_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.importer import read_files

    faq = Path(__file__).resolve().parent.parent / "knowledge" / "faq.txt"
    rows, errors = read_files([str(faq)])
    assert errors == [] and len(rows) >= 100
