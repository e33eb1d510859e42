"""Review findings on knowledge import/export: an import respects the 50-question limit of an
entry it updates; export -> import -> export is a fixed point for any answer, in every
format (the answer read back is the one stored, byte for byte)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import delete

from wxbot.qa import store, writer
from wxbot.qa.formats import FORMATS, MISSING, Item, export_items, parse, write
from wxbot.qa.importer import import_files
from wxbot.qa.writer import MAX_QUESTIONS, check_answer, check_questions

NOW = 1.0e9


def run(app, *paths: str, **kw):  # type: ignore[no-untyped-def]
    return import_files(app.extensions["wxbot.engine"], list(paths), now=NOW, **kw)


def entries(app) -> dict[int, tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return store.load_entries(conn)


def put(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


# -- 1. the question limit on the update path --------------------------------------------------


def _entry_with(app, n: int, answer: str = "旧答案") -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        return writer.create_entry(
            conn, [f"已有问法{i}" for i in range(n)], answer, now=NOW, source="api"
        )


def test_import_cannot_push_an_entry_past_the_question_limit(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    entry_id = _entry_with(app, MAX_QUESTIONS - 5)
    before = entries(app)
    new = "|".join(f"新问法{i}" for i in range(10))
    path = put(tmp_path, "a.csv", f"另一个问题,另一个答案\n已有问法0|{new},新答案\n")
    reason = (
        f"{path}:2: entry {entry_id} has {MAX_QUESTIONS - 5} questions; "
        f"adding 10 would pass the limit of {MAX_QUESTIONS} per entry"
    )
    for dry_run in (True, False):  # a dry run reports exactly what the import would
        report = run(app, path, dry_run=dry_run)
        assert not report.written
        assert report.errors == [reason], dry_run
        assert (report.added, report.updated, report.rejected) == (1, 0, 1)
        assert entries(app) == before  # nothing written: the file is not clean
    report = run(app, path, skip_bad=True)
    assert report.written and report.errors == [reason]
    assert (report.added, report.updated, report.rejected) == (1, 0, 1)
    after = entries(app)
    assert after[entry_id] == before[entry_id]  # nothing stored is lost or changed
    assert len(after) == 2
    assert all(len(qs) <= MAX_QUESTIONS for _, qs in after.values())


def test_rows_of_one_import_count_together_against_the_limit(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two rows matching one entry (each by a different question) add their questions to it:
    the second may not pass the limit the first one left room for."""
    entry_id = _entry_with(app, MAX_QUESTIONS - 3)
    path = put(
        tmp_path,
        "a.txt",
        "Q: 已有问法1\nQ: 甲\nQ: 乙\nA: 旧答案\n\nQ: 已有问法2\nQ: 丙\nQ: 丁\nA: 旧答案\n",
    )
    report = run(app, path, skip_bad=True)
    assert report.errors == [
        f"{path}:6: entry {entry_id} has {MAX_QUESTIONS - 1} questions; "
        f"adding 2 would pass the limit of {MAX_QUESTIONS} per entry"
    ]
    assert (report.updated, report.rejected) == (1, 1)
    qs = entries(app)[entry_id][1]
    assert len(qs) == MAX_QUESTIONS - 1 and qs[-2:] == ["甲", "乙"]


def test_an_import_filling_an_entry_exactly_to_the_limit_is_fine(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    entry_id = _entry_with(app, MAX_QUESTIONS - 2)
    report = run(
        app, put(tmp_path, "a.jsonl", '{"questions": ["已有问法0", "甲", "乙"], "answer": "新"}\n')
    )
    assert report.written and report.errors == [] and report.updated == 1
    assert entries(app)[entry_id] == (
        "新",
        [f"已有问法{i}" for i in range(MAX_QUESTIONS - 2)] + ["甲", "乙"],
    )


# -- 2./3. export -> import -> export is a fixed point -----------------------------------------

ANSWERS = [
    "第一行\nQ: 这不是问题",
    "第一行\nq : 也不是\n问：还不是\n问:仍然不是",
    "第一行\nA: 不是新答案\n答：也不是",
    "第一行\n# 不是注释\n  # 缩进的井号",
    "第一行\n Q: 本来就缩进了一格\n  Q: 两格",
    "第一行\nL: en\n语言: ja",
    "中间有空行\n\n\n之后",
    "行尾空格  \n下一行\t\n结束",
    "回车\r在中间",
    "Windows\r\n换行\r\n的答案",
    "混合\r\n\n\r\r\n换行",
    "制表符\t在中间\n\t缩进的行\n    四个空格",
    "反斜杠 \\r 和 \\\\ 和 \\n 原样",
    '引号 " 和, 逗号\n"整行引号"',
    "竖线 | 在答案里\n|开头",
    "U+2028\u2028U+0085\x85U+2029\u2029结束",  # (form feeds and the like: not storable)
    "Q: 第一行就像问题\n# 第二行像注释",
    "A\\: 像转义标记\nA\\: 再来",
    "表情 😀 和 ＃全角井号\n＃全角开头\nＱ：全角问",
]
QUESTIONS = [["退款|流程", "怎么,退款", '引"号']]


def _items() -> list[Item]:
    items = []
    for i, answer in enumerate(ANSWERS):
        assert check_answer(answer) == answer  # a storable answer
        qs = QUESTIONS[i] if i < len(QUESTIONS) else [f"问题{i}", f"相似问法{i}"]
        items.append(Item(qs, answer, ("en", None, "zh")[i % 3]))
    return items


def _dump(items: list[Item], fmt: str) -> str:
    out = io.StringIO(newline="")
    assert write(items, fmt, out) == len(items)
    return out.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_answer_reads_back_exactly(fmt) -> None:  # type: ignore[no-untyped-def]
    items = _items()
    parsed = parse(_dump(items, fmt), f"out.{fmt}", fmt)
    assert parsed.errors == []
    got = [
        (check_questions(r.questions), check_answer(r.answer), r.language) for r in parsed.records
    ]
    # JSONL and TXT leave "no language" out (an update keeps the entry's, which is none)
    got = [(q, a, None if lang is MISSING else lang) for q, a, lang in got]
    want = [(it.questions, it.answer, it.language) for it in items]
    if fmt == "csv":  # "|" separates a row's questions: a main question's "|" is written "/"
        want[0] = (["退款/流程", *want[0][0][1:]], *want[0][1:])  # (the same question key)
    assert [a for _, a, _ in got] == [a for _, a, _ in want]  # the answers first: clearer
    assert got == want


def test_old_txt_files_read_as_before(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Hand-written files keep their meaning; an older export's one-space indent (its way of
    keeping "Q:" and "#" lines inside an answer) is now taken off as intended."""
    text = (
        "# comment\nQ: 甲\nA: 第一行\n  两格缩进\n\t制表符\n \\r 反斜杠\n行尾  \n\n"
        "Q: 乙\nA: 老版本导出\n Q: 缩进的问\n # 缩进的注释\n"
    )
    parsed = parse(text, "old.txt", "txt")
    assert parsed.errors == []
    assert [check_answer(r.answer) for r in parsed.records] == [
        "第一行\n  两格缩进\n\t制表符\n \\r 反斜杠\n行尾",
        "老版本导出\nQ: 缩进的问\n# 缩进的注释",
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_import_export_is_a_fixed_point(app, tmp_path, fmt) -> None:  # type: ignore[no-untyped-def]
    """On both databases: re-importing an export changes nothing, and importing it into an
    empty knowledge base gives back the very same export."""
    from wxbot.qa.cli import kb

    engine = app.extensions["wxbot.engine"]
    with engine.begin() as conn:
        for it in _items():
            writer.create_entry(
                conn, it.questions, it.answer, now=NOW, source="api", language=it.language
            )
    runner = app.test_cli_runner()
    first = tmp_path / f"first.{fmt}"
    assert runner.invoke(kb, ["export", str(first)]).exit_code == 0
    stored = entries(app)
    again = runner.invoke(kb, ["import", str(first)])
    n = len(ANSWERS)
    assert f"added 0, updated 0, unchanged {n}, rejected 0" in again.output, again.output
    assert entries(app) == stored
    with engine.begin() as conn:
        conn.execute(delete(store.questions))
        conn.execute(delete(store.entries))
    fresh = runner.invoke(kb, ["import", str(first)])
    assert f"added {n}, updated 0" in fresh.output, fresh.output
    with engine.connect() as conn:
        assert [it.answer for it in export_items(conn)] == ANSWERS
    second = tmp_path / f"second.{fmt}"
    assert runner.invoke(kb, ["export", str(second)]).exit_code == 0
    assert second.read_bytes() == first.read_bytes()


def test_random_answers_read_back_exactly() -> None:
    """Answers made of the pieces every format treats specially, in any order."""
    import random

    pieces = ["Q:", "q :", "问：", "A:", "A\\:", "答\\：", "L: en", "#", " ", "  ", "\t", "\n"]
    pieces += ["\r", "\r\n", "\\", "\\r", "\\\\", "x", "中", '"', ",", "|", "\u2028", "\x85"]
    rnd = random.Random(2024)
    for _ in range(2000):
        answer = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 14)))
        if not answer.strip():
            continue
        answer = check_answer(answer)
        items = [Item(["问题"], answer), Item(["第二个问题"], "第二个答案")]
        for fmt in FORMATS:
            parsed = parse(_dump(items, fmt), f"out.{fmt}", fmt)
            got = [check_answer(r.answer) for r in parsed.records]
            assert (parsed.errors, got) == ([], [answer, "第二个答案"]), (fmt, _dump(items, fmt))
