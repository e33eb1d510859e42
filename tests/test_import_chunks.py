"""Imports larger than one batch (importer.BATCH made small): still one transaction (a bad
row or a refusing database near the end leaves nothing written), the same counts, errors
and stored rows as a one-batch import, duplicates found across batches, the same basis."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from wxbot.qa import importer, store, unanswered, versions
from wxbot.qa.importer import import_files
from wxbot.qa.writer import MAX_QUESTIONS

SMALL = 7  # rows per batch in these tests: every import below spans several batches


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(importer, "BATCH", SMALL)


def write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("question,answer,similar,language\n" + "".join(lines), encoding="utf-8")
    return str(path)


def row(q: str, a: str, similar: str = "", language: str = "") -> str:
    return ",".join([q, a, similar, language]) + "\n"


def run(app, path: str, **kw):  # type: ignore[no-untyped-def]
    return import_files(app.extensions["wxbot.engine"], [path], now=1.0e9, **kw)


def snapshot(app) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Everything an import may write."""
    with app.extensions["wxbot.engine"].connect() as conn:
        q = store.questions
        e = store.entries
        return {
            "entries": conn.execute(
                select(e.c.id, e.c.answer, e.c.language, e.c.source_ref, e.c.updated_at).order_by(
                    e.c.id
                )
            ).all(),
            "questions": conn.execute(
                select(q.c.entry_id, q.c.question, q.c.qkey, q.c.position).order_by(
                    q.c.entry_id, q.c.position
                )
            ).all(),
            "unanswered": unanswered.count_unanswered(conn),
            "version": versions.read_version(conn),
        }


def base_file(tmp_path: Path, n: int = 30) -> str:
    return write(
        tmp_path,
        "base.csv",
        [row(f"问题{i}", f"答案{i}", f"说法{i}|讲法{i}" if i % 3 == 0 else "") for i in range(n)],
    )


# -- all or nothing ----------------------------------------------------------------------------


def test_a_bad_row_at_the_end_of_a_large_file_writes_nothing(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(app, base_file(tmp_path))
    before = snapshot(app)
    lines = [row(f"新问题{i}", f"新答案{i}", f"新说法{i}") for i in range(40)]
    lines += [row(f"问题{i}", f"改了{i}") for i in range(30)]
    path = write(tmp_path, "b.csv", [*lines, row("最后一行", "")])
    report = run(app, path)
    assert not report.written and report.errors == [f"{path}:72: the answer is empty"]
    assert snapshot(app) == before


def test_a_row_refused_when_planned_at_the_end_writes_nothing(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # found only against the database (its questions belong to two entries): after the
    # rows before it were planned, in an earlier batch
    run(app, base_file(tmp_path))
    before = snapshot(app)
    lines = [row(f"新问题{i}", f"新答案{i}") for i in range(40)]
    lines += [row(f"问题{i}", f"改了{i}") for i in range(1, 29)]
    path = write(tmp_path, "b.csv", [*lines, row("问题0", "x", "问题29")])
    report = run(app, path)
    assert report.errors == [f"{path}:70: its questions belong to different entries (1, 30)"]
    assert not report.written and snapshot(app) == before
    report = run(app, path, skip_bad=True)
    assert report.written and (report.added, report.updated, report.rejected) == (40, 28, 1)


REFUSE = {
    "sqlite": (
        "CREATE TRIGGER refuse_import {when} ON {table} WHEN NEW.{column} = '{value}' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
    ),
    "mysql": (
        "CREATE TRIGGER refuse_import {when} ON {table} FOR EACH ROW BEGIN "
        "IF NEW.{column} = '{value}' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a trigger'; END IF; END"
    ),
}


@pytest.mark.parametrize(
    "when, table, column, value",
    [
        ("BEFORE INSERT", "kb_entries", "answer", "拒绝的答案"),
        ("BEFORE INSERT", "kb_questions", "question", "拒绝的问题"),
        ("BEFORE UPDATE", "kb_entries", "answer", "拒绝的答案"),
    ],
)
def test_a_write_the_database_refuses_midway_leaves_nothing(
    app, tmp_path, when, table, column, value
) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    run(app, base_file(tmp_path))
    engine = app.extensions["wxbot.engine"]
    with engine.begin() as conn:
        for i in (5, 45):  # questions users asked: an import takes them off the list
            unanswered.record_unanswered(conn, f"新问题{i}", 1.0e9)
        conn.exec_driver_sql(
            REFUSE[engine.dialect.name].format(when=when, table=table, column=column, value=value)
        )
    before = snapshot(app)
    assert before["unanswered"] == 2
    lines = [row(f"新问题{i}", f"新答案{i}", f"新说法{i}") for i in range(50)]
    lines += [row(f"问题{i}", f"改了{i}", f"又一说法{i}") for i in range(29)]
    if table == "kb_questions":
        lines.append(row(value, "答"))
    else:  # the last new entry, or the last update
        lines.append(row("最后的新问题" if when == "BEFORE INSERT" else "问题29", value))
    path = write(tmp_path, "b.csv", lines)
    with pytest.raises(Exception, match="refused by a trigger"):
        run(app, path)
    assert snapshot(app) == before
    result = app.test_cli_runner().invoke(kb, ["import", path])
    assert result.exit_code == 1 and "database error, nothing written" in result.output
    assert "refused by a trigger" in result.output
    assert snapshot(app) == before


# -- the same counts, errors and rows as before ------------------------------------------------


def test_a_mixed_import_counts_and_stores_as_before(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(app, base_file(tmp_path))
    full = [f"满{i}" for i in range(MAX_QUESTIONS - 1)]
    run(app, write(tmp_path, "full.csv", [row("满的", "满答", "|".join(full))]))  # entry 31
    lines = [
        row("问题0", "答案0"),  # unchanged (2)
        row("问题1", "新答案1"),  # updated: answer (3)
        row("问题2", "答案2", "问题2的新说法"),  # updated: a question added (4)
        row("问题3", "答案3", "", "en"),  # updated: language (5)
        row("问题4", "答案4", "", ""),  # unchanged: no language either way (6)
        row("讲法6", "答案6"),  # unchanged: by a similar question (7)
        row("问题9", "第一次改", "问题9新1|问题9新2"),  # updated (8)
        row("说法9", "第二次改", "问题9新3"),  # updated again, the same entry (9)
        row("问题5|问题7", "两个条目"),  # refused: two entries (10)
        row("满的", "满答", "再多一个"),  # refused: would pass MAX_QUESTIONS (11)
        row("满0", "满答改了"),  # updated: no new question (12)
    ]
    lines += [row(f"全新{i}", f"全新答{i}", f"全新说法{i}" if i % 2 else "") for i in range(20)]
    lines.append(row("问题12", "答案12", "问题12新"))  # updated after new rows (33)
    path = write(tmp_path, "b.csv", lines)
    report = run(app, path, skip_bad=True)
    assert (report.added, report.updated, report.unchanged, report.rejected) == (20, 7, 3, 2)
    assert report.errors == [
        f"{path}:10: its questions belong to different entries (6, 8)",
        f"{path}:11: entry 31 has {MAX_QUESTIONS} questions; adding 1 would pass the limit "
        f"of {MAX_QUESTIONS} per entry",
    ]
    with app.extensions["wxbot.engine"].connect() as conn:
        entries = store.load_entries(conn)
        languages = store.load_languages(conn)
    assert entries[2] == ("新答案1", ["问题1"])
    assert entries[3] == ("答案2", ["问题2", "问题2的新说法"])
    assert languages[4] == "en" and 5 not in languages
    assert entries[10] == (
        "第二次改",
        ["问题9", "说法9", "讲法9", "问题9新1", "问题9新2", "问题9新3"],
    )
    assert entries[13] == ("答案12", ["问题12", "说法12", "讲法12", "问题12新"])
    assert entries[31][0] == "满答改了" and len(entries[31][1]) == MAX_QUESTIONS
    assert [entries[32 + i] for i in range(3)] == [
        ("全新答0", ["全新0"]),
        ("全新答1", ["全新1", "全新说法1"]),
        ("全新答2", ["全新2"]),
    ]
    assert len(entries) == 51
    again = run(app, path, skip_bad=True)
    # line 8 sets the answer line 9 replaced: updated again (each row is compared with the
    # entry as stored before the import)
    assert (again.added, again.updated, again.unchanged, again.rejected) == (0, 1, 29, 2)
    assert again.written


def test_positions_continue_after_the_stored_questions(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(app, base_file(tmp_path))
    lines = [row(f"问题{i}", f"答案{i}", f"加{i}") for i in range(30)]
    run(app, write(tmp_path, "b.csv", lines))
    with app.extensions["wxbot.engine"].connect() as conn:
        q = store.questions
        rows = conn.execute(select(q.c.entry_id, q.c.question, q.c.position)).all()
    positions = {(e, question): p for e, question, p in rows}
    assert positions[(1, "加0")] == 3 and positions[(2, "加1")] == 1


def test_progress_is_announced_and_reported_as_before(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run(app, base_file(tmp_path))
    lines = [row(f"新{i}", f"答{i}", f"新说法{i}") for i in range(20)]
    lines += [row(f"问题{i}", f"改{i}", f"加{i}") for i in range(10)]
    events: list[tuple[str, int]] = []
    report = run(
        app,
        write(tmp_path, "b.csv", lines),
        planned=lambda total: events.append(("planned", total)),
        progress=lambda n, what: events.append((what, n)),
    )
    assert (report.added, report.updated) == (20, 10)
    # 20 entries, their 40 questions and the 10 added to stored entries, 10 updates
    assert events[0] == ("planned", 20 + 40 + 10 + 10)
    assert events[1:] == [
        *[("entries", n) for n in (7, 7, 6)],
        *[("questions", n) for n in (7, 7, 7, 7, 7, 7, 7, 1)],
        *[("updates", n) for n in (7, 3)],
    ]


def test_the_unanswered_questions_an_import_answers_are_forgotten(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    with engine.begin() as conn:
        for question in ("问题3", "说法27", "不相干的问题"):
            unanswered.record_unanswered(conn, question, 1.0e9)
    run(app, base_file(tmp_path))
    with engine.connect() as conn:
        left = conn.execute(select(store.unanswered.c.question)).scalars().all()
    assert left == ["不相干的问题"]


def test_many_changed_entries_are_logged_as_a_full_reload(app, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(importer, "LOG_EACH_LIMIT", 25)
    engine = app.extensions["wxbot.engine"]
    logged: list[set] = []
    for path in (
        write(tmp_path, "a.csv", [row(f"问题{i}", "答") for i in range(20)]),  # 20: each
        write(tmp_path, "b.csv", [row(f"问题{i}", "答") for i in range(26)]),  # 6 more: each
        write(tmp_path, "c.csv", [row(f"问题{i}", "改") for i in range(26)]),  # 26: all
    ):
        assert run(app, path).written
        with engine.connect() as conn:
            c = versions.changes
            version = versions.read_version(conn)
            logged.append(
                set(conn.execute(select(c.c.entry_id).where(c.c.version == version)).scalars())
            )
    assert logged == [set(range(1, 21)), set(range(21, 27)), {None}]


# -- duplicates across batches -----------------------------------------------------------------


def test_duplicates_across_batches_are_found(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [row(f"问题{i}", f"答案{i}") for i in range(40)]
    lines[35] = row("新的", "答", "ＷＩＦＩ 密码")  # the same key as row 2's similar question
    lines[1] = row("别的", "答", "wifi密码|WiFi 密码")  # a duplicate in one row is dropped
    lines.append(row("问题3", "又一次"))
    path = write(tmp_path, "b.csv", lines)
    report = run(app, path)
    assert not report.written and report.errors == [
        f"{path}:37: the question 'ＷＩＦＩ 密码' is already at {path}:3",
        f"{path}:42: the question '问题3' is already at {path}:5",
    ]
    with app.extensions["wxbot.engine"].connect() as conn:
        assert store.count_entries(conn) == 0
    report = run(app, path, skip_bad=True)
    assert report.written and (report.added, report.rejected) == (39, 2)
    with app.extensions["wxbot.engine"].connect() as conn:
        assert store.load_entries(conn)[2] == ("答", ["别的", "wifi密码"])


# -- the basis a console import is confirmed with ----------------------------------------------


def reference_basis(app, keys: list[str]) -> str:  # type: ignore[no-untyped-def]
    """The basis as the importer always computed it, from the database."""
    with app.extensions["wxbot.engine"].connect() as conn:
        q = store.questions
        owners = dict(conn.execute(select(q.c.qkey, q.c.entry_id).where(q.c.qkey.in_(keys))).all())
        current = store.load_entries(conn, set(owners.values()))
        languages = store.load_languages(conn, current)
    digest = hashlib.sha256()
    for key in sorted(owners):
        digest.update(f"{key}\x00{owners[key]}\x01".encode())
    for entry_id in sorted(current):
        answer, questions = current[entry_id]
        item = [entry_id, answer, questions, languages.get(entry_id)]
        digest.update(json.dumps(item, ensure_ascii=False).encode() + b"\x02")
    return digest.hexdigest()[:24]


def test_the_basis_is_computed_as_before_and_refuses_a_changed_base(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.formats import parse_file
    from wxbot.qa.text import question_key

    run(app, base_file(tmp_path))
    engine = app.extensions["wxbot.engine"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE kb_entries SET language = 'en' WHERE id IN (4, 17)"))
    lines = [row(f"问题{i}", f"新答案{i}", f"再加{i}") for i in range(0, 30, 2)]
    lines += [row(f"新{i}", "答") for i in range(10)]
    path = write(tmp_path, "b.csv", lines)
    parsed = parse_file(path)
    keys = [question_key(str(q)) for r in parsed.records for q in r.questions]
    checked = importer.import_parsed(engine, [parsed], now=1.0e9, dry_run=True)
    assert checked.basis == reference_basis(app, keys) and not checked.written
    with engine.begin() as conn:
        conn.execute(text("UPDATE kb_entries SET answer = '别人改了' WHERE id = 29"))
    stale = importer.import_parsed(engine, [parse_file(path)], now=1.0e9, basis=checked.basis)
    assert stale.stale and not stale.written and stale.basis == reference_basis(app, keys)
    done = importer.import_parsed(engine, [parse_file(path)], now=1.0e9, basis=stale.basis)
    assert done.written and (done.added, done.updated) == (10, 15)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(store.entries)).scalar() == 40
