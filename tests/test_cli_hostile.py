"""The `wxbot` command under hostile input, as an operator types it or a script runs it.

The rule: every bad input is one line saying what is wrong and what to do, with a non-zero
exit code (130 for Ctrl-C), never a traceback, and nothing already stored is lost. Driven
through Flask's CLI runner; a real subprocess where the signal and the real streams matter.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import event, text

import wxbot
import wxbot.qa.cli as qa_cli
import wxbot.qa.importer as importer
import wxbot.wechat.chat as chat_module
from tests.helpers import say
from tests.wechat_fakes import http_server
from wxbot.cli import cli

KNOWLEDGE = "Q: 营业时间\nA: 早九晚五\n\nQ: hello\nA: hi there 🙂\n"


def run(app: Any, *args: str, **kwargs: Any) -> Result:
    return app.test_cli_runner().invoke(cli, list(args), **kwargs)


def one_line_failure(result: Result, code: int = 1) -> str:
    """The command failed with ``code`` and said so without a traceback; its output."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def seeded(make_app, tmp_path: Path) -> Any:  # type: ignore[no-untyped-def]
    app = make_app()
    faq = tmp_path / "faq.txt"
    faq.write_text(KNOWLEDGE, encoding="utf-8")
    result = run(app, "kb", "import", str(faq))
    assert result.exit_code == 0, result.output
    return app


def exported(app: Any) -> str:
    result = run(app, "kb", "export", "-", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return result.stdout


# --- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_during_an_import_is_one_line_exit_130_and_writes_nothing(  # type: ignore[no-untyped-def]
    seeded, tmp_path, monkeypatch
) -> None:
    before = exported(seeded)
    real_upsert = importer._upsert

    def upsert_then_ctrl_c(*args: Any, **kwargs: Any) -> None:
        real_upsert(*args, **kwargs)  # the rows are written in the transaction...
        raise KeyboardInterrupt  # ...and the operator presses Ctrl-C before the commit

    monkeypatch.setattr(importer, "_upsert", upsert_then_ctrl_c)
    more = tmp_path / "more.txt"
    more.write_text("Q: 新问题\nA: 新答案\n", encoding="utf-8")
    output = one_line_failure(run(seeded, "kb", "import", str(more)), 130)
    assert "Error: interrupted" in output and "Aborted" not in output
    monkeypatch.undo()
    assert exported(seeded) == before


def test_ctrl_c_at_the_interactive_chat_prompt_exits_130(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    def prompt(*_args: Any, **_kwargs: Any) -> str:
        try:  # what click.prompt does with Ctrl-C (and with Ctrl-D: EOFError)
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.Abort() from None

    monkeypatch.setattr(click, "prompt", prompt)
    output = one_line_failure(run(make_app(), "chat", input=Terminal(b"")), 130)
    assert "interrupted" in output


def test_ctrl_c_in_a_real_process_is_one_line_and_exit_130(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WXBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'wxbot.db'}",
        "WXBOT_FLOWS_DIR": str(Path(__file__).parent.parent / "knowledge" / "flows"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from wxbot.cli import main; main()", "chat"],
        stdin=subprocess.PIPE,  # left open: chat waits for a line
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        # a shell starts background jobs with SIGINT ignored; a terminal's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "wxbot chat (" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "wxbot chat (" in seen, seen
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Error: interrupted" in err and "Traceback" not in err and "Aborted" not in err


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, needle",
    [
        ("foo://host/db", "unknown database or driver 'foo'"),
        ("mysql+pymsql://root@127.0.0.1/wxbot", "unknown database or driver 'mysql+pymsql'"),
        ("mysql+mysqldb://root@127.0.0.1/wxbot", "needs the Python module 'MySQLdb'"),
    ],
)
def test_a_database_url_with_an_unknown_or_missing_driver_is_one_line(  # type: ignore[no-untyped-def]
    monkeypatch, url: str, needle: str
) -> None:
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # mysqlclient not installed
    monkeypatch.setenv("WXBOT_DATABASE_URL", url)
    for args in (["init-db"], ["kb", "export", "-"]):
        output = one_line_failure(CliRunner().invoke(cli, args))
        assert "WXBOT_DATABASE_URL" in output and needle in output


def test_init_db_refuses_an_in_memory_sqlite_database(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_DATABASE_URL", "sqlite:///")  # sqlite:///$DB with DB unset
    output = one_line_failure(CliRunner().invoke(cli, ["init-db"]))
    assert "in-memory database" in output and "database ready" not in output


@pytest.mark.parametrize(
    "content, needle",
    [
        ('WXBOT_TOKEN = "unterminated\n', "bad.cfg:1: SyntaxError"),
        (b"\xff\xfe\x00junk", "bad.cfg: SyntaxError"),
        ("WXBOT_SESSION_TTL = 1 / 0\n", "bad.cfg: ZeroDivisionError"),
    ],
)
def test_a_broken_instance_config_file_is_one_line(  # type: ignore[no-untyped-def]
    monkeypatch, tmp_path, content: str | bytes, needle: str
) -> None:
    cfg = tmp_path / "bad.cfg"
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    else:
        cfg.write_text(content, encoding="utf-8")
    monkeypatch.setattr(wxbot, "INSTANCE_CONFIG", str(cfg))  # absolute: joined as itself
    monkeypatch.setenv("WXBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'wxbot.db'}")
    output = one_line_failure(CliRunner().invoke(cli, ["init-db"]))
    assert needle in output and "WXBOT_X = " in output


def test_cleanup_batch_beyond_any_integer_is_a_usage_error(seeded) -> None:  # type: ignore[no-untyped-def]
    output = one_line_failure(run(seeded, "sessions", "cleanup", "--batch", str(10**30)), 2)
    assert "Invalid value for '--batch'" in output


@pytest.mark.parametrize(
    "name, content",
    [
        ("faq.txt", b""),
        ("faq.csv", b"\n\n"),
        ("faq.tsv", b""),
        ("faq.jsonl", b"  \r\n"),
        ("faq.xlsx", b""),
        ("synonyms.txt", b""),
    ],
)
def test_an_empty_file_is_refused_as_the_console_refuses_it(  # type: ignore[no-untyped-def]
    seeded, tmp_path, name: str, content: bytes
) -> None:
    """A download that came back empty, a truncated export: said, not "imported: added 0"."""
    before = exported(seeded)
    (tmp_path / "in").mkdir()
    empty = tmp_path / "in" / name
    empty.write_bytes(content)
    output = one_line_failure(run(seeded, "kb", "import", str(empty)))
    assert f"{empty}: the file is empty" in output and "nothing written" in output
    assert exported(seeded) == before


def test_skip_bad_with_no_good_row_at_all_is_a_failure(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A mistyped path or the wrong file: "imported: added 0 ... rejected 1" and exit 0 before."""
    prose = tmp_path / "notes.txt"
    prose.write_text("just some notes\n", encoding="utf-8")
    for args in ([str(tmp_path / "typo.txt")], [str(prose)], ["--dry-run", str(prose)]):
        output = one_line_failure(run(seeded, "kb", "import", "--skip-bad", *args))
        assert "nothing written: no good rows" in output and "imported" not in output
    # one good row among the bad: imported, and the summary says what was not
    prose.write_text("just some notes\n\nQ: 新问题\nA: 新答案\n", encoding="utf-8")
    result = run(seeded, "kb", "import", "--skip-bad", str(prose), str(tmp_path / "typo.txt"))
    assert result.exit_code == 0, result.output
    assert "imported: added 1, updated 0, unchanged 0, rejected 2" in result.output
    assert "typo.txt: cannot read" in result.output


# --- a database that refuses --------------------------------------------------------------


@contextmanager
def refusing_writes(app: Any) -> Iterator[None]:
    """The app's database refuses writes in the block (reads still work), as a MariaDB
    user without INSERT/UPDATE would, or a read-only SQLite file."""
    engine = app.extensions["wxbot.engine"]

    def refuse_writes(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.close()

    engine.dispose()
    event.listen(engine, "connect", refuse_writes)
    try:
        yield
    finally:
        event.remove(engine, "connect", refuse_writes)
        engine.dispose()


def test_an_import_the_database_refuses_is_one_line_and_keeps_what_was_stored(  # type: ignore[no-untyped-def]
    seeded, tmp_path
) -> None:
    before = exported(seeded)
    more = tmp_path / "more.txt"
    more.write_text("Q: 新问题\nA: 新答案\n\nQ: hello\nA: changed\n", encoding="utf-8")
    with refusing_writes(seeded):
        output = one_line_failure(run(seeded, "kb", "import", str(more)))
    assert "database error, nothing written" in output
    assert exported(seeded) == before


def test_a_cleanup_the_database_refuses_is_one_line(seeded, clock) -> None:  # type: ignore[no-untyped-def]
    say(seeded.extensions["wxbot.bot"], "u1", "你好")  # a context, expired below
    clock.advance(700)
    with refusing_writes(seeded):
        output = one_line_failure(run(seeded, "sessions", "cleanup"))
    assert "database error:" in output


# --- kb export ----------------------------------------------------------------------------


def test_export_to_stdout_is_utf8_whatever_the_locale(seeded) -> None:  # type: ignore[no-untyped-def]
    runner = seeded.test_cli_runner(charset="ascii")  # PYTHONIOENCODING=ascii, a GBK console
    result = runner.invoke(cli, ["kb", "export", "-", "--format", "csv"])
    assert result.exit_code == 0, result.output
    text = result.stdout_bytes.decode("utf-8")
    assert "营业时间,早九晚五" in text and "🙂" in text
    assert "\r\r\n" not in text


def test_export_to_a_closed_stdout_is_one_line(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(qa_cli, "sys", types.SimpleNamespace(stdout=None, stderr=sys.stderr))
    output = one_line_failure(run(seeded, "kb", "export", "-"))
    assert "standard output is closed" in output


@pytest.mark.parametrize("name", ["backup.csv", "backup.xlsx", "synonyms-backup.txt"])
def test_an_export_that_fails_midway_leaves_the_existing_file_as_it_was(  # type: ignore[no-untyped-def]
    seeded, tmp_path, monkeypatch, name: str
) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / name
    target.write_bytes(b"yesterday's export")
    target.chmod(0o640)

    def full_disk_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        out = open(path, mode, *args, **kwargs)  # noqa: SIM115 - the caller closes it
        write = out.write

        def write_a_little_then_fail(data: Any) -> int:
            write(data[:4])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        out.write = write_a_little_then_fail
        return out

    monkeypatch.setattr(qa_cli, "open", full_disk_open, raising=False)  # the module's open
    output = one_line_failure(run(seeded, "kb", "export", str(target)))
    assert f"cannot write {target}: No space left on device" in output
    assert target.read_bytes() == b"yesterday's export"
    assert [p.name for p in target.parent.iterdir()] == [name]  # no temporary file left

    monkeypatch.undo()  # and a complete export replaces it, keeping its permissions
    result = run(seeded, "kb", "export", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() != b"yesterday's export"
    assert target.stat().st_mode & 0o777 == 0o640


def test_export_to_a_device_writes_through_it(seeded) -> None:  # type: ignore[no-untyped-def]
    """/dev/stdout, /dev/null, a pipe: written in place, never replaced by a file."""
    result = run(seeded, "kb", "export", "--format", "csv", os.devnull)
    assert result.exit_code == 0, result.output
    assert not os.path.isfile(os.devnull)


# --- wxbot chat ---------------------------------------------------------------------------


def test_chat_with_stdin_closed_ends_like_empty_input(make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(chat_module, "sys", types.SimpleNamespace(stdin=None))
    result = run(make_app(), "chat")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_chat_against_a_server_that_is_down_fails_the_exit_code(make_app) -> None:  # type: ignore[no-untyped-def]
    result = run(make_app(), "chat", "--url", "http://127.0.0.1:9/wechat", input="你好\n你好\n")
    output = one_line_failure(result)
    assert output.count("[错误] cannot reach the server") == 2
    assert "2 line(s) failed" in output


def test_chat_against_something_that_is_not_a_wxbot_says_so_in_one_line(make_app) -> None:  # type: ignore[no-untyped-def]
    page = "<!DOCTYPE html>\n<html>\n<body>\n" + "<p>Not here</p>\n" * 200 + "</body></html>"

    def not_a_wxbot(_environ: Any, start_response: Any) -> list[bytes]:
        start_response("501 Not Implemented", [("Content-Type", "text/html")])
        return [page.encode()]

    with http_server(not_a_wxbot) as url:  # type: ignore[arg-type]
        result = run(make_app(), "chat", "--url", url, input="你好\n")
    output = one_line_failure(result)
    errors = [line for line in output.splitlines() if line.startswith("[错误]")]
    assert len(errors) == 1 and errors[0].startswith("[错误] HTTP 501: <!DOCTYPE html> <html>")
    assert len(errors[0]) < 250
    assert "<p>Not here</p>" not in output.replace(errors[0], "")


def test_chat_that_went_well_still_exits_0(make_app) -> None:  # type: ignore[no-untyped-def]
    result = run(make_app(), "chat", input="你好\n/help\n")
    assert result.exit_code == 0, result.output
    assert "bot> " in result.output


@pytest.mark.parametrize("openid", ["", "o" * 65, "o_\x01bell", "o_\udcff"])
def test_chat_refuses_an_openid_wechat_could_not_send(make_app, openid: str) -> None:  # type: ignore[no-untyped-def]
    """Before: every line failed (HTTP 400), or the reply came back addressed to another."""
    app = make_app()
    result = app.test_cli_runner().invoke(chat_module.chat, ["--openid", openid], input="你好\n")
    output = one_line_failure(result, 2)
    assert "Invalid value for '--openid'" in output and "bot>" not in output


def test_chat_input_that_is_not_utf8_is_said_not_a_traceback(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    # a strict stdin (a UTF-8 locale): the whole input is refused in one line
    output = one_line_failure(run(app, "chat", input="你好\n".encode("gbk")))
    assert "standard input is not utf-8 text" in output
    # a lenient one (the C locale) hands the bytes on as lone surrogates: that line is refused
    settings = app.extensions["wxbot.settings"]
    sim = chat_module.WeChatSimulator.from_settings(settings, "plain", clock=clock)
    lines, out = iter(["\udcc4\udce3\udcba\udcc3", "你好"]), []
    failed = chat_module.run_chat(
        sim, app.test_client(), "o_u", lambda: next(lines, None), out.append
    )
    assert failed == 1
    assert out[0].startswith("[用法] the line is not UTF-8 text") and out[1].startswith("bot> ")


def test_export_over_a_writable_file_in_a_folder_that_is_not_writes_it_in_place(  # type: ignore[no-untyped-def]
    seeded, tmp_path, monkeypatch
) -> None:
    """No temporary file can be made beside it: written in place, as before."""
    target = tmp_path / "backup.csv"
    target.write_text("yesterday's export", encoding="utf-8")

    def no_new_files(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return open(path, mode, *args, **kwargs)  # noqa: SIM115 - the caller closes it

    monkeypatch.setattr(qa_cli, "open", no_new_files, raising=False)
    result = run(seeded, "kb", "export", str(target))
    assert result.exit_code == 0, result.output
    assert "营业时间,早九晚五" in target.read_text(encoding="utf-8")
    target.unlink()  # and a file that does not exist yet cannot be made there at all
    output = one_line_failure(run(seeded, "kb", "export", str(target)))
    assert f"cannot write {target}: Permission denied" in output


def test_in_process_chat_refuses_a_schema_behind_the_code(make_app) -> None:  # type: ignore[no-untyped-def]
    """As `wxbot serve` refuses it: chatted with anyway, each message met a missing table."""
    app = make_app()
    engine = app.extensions["wxbot.engine"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0013_sms_quotas'"))
    output = one_line_failure(run(app, "chat", input="你好\n"))
    assert "the schema is at 0013_sms_quotas" in output and "run `wxbot init-db`" in output
    assert "bot>" not in output
