"""``wxbot kb``: import and export knowledge files."""

from __future__ import annotations

import io
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from wxbot.qa import synonyms as synonym_store
from wxbot.qa.cli_match import match_command
from wxbot.qa.formats import ALL_FORMATS, FormatError, detect_format, export_items, write
from wxbot.qa.importer import import_files, named_synonyms

MAX_ERRORS_SHOWN = 200


@click.group("kb")
def kb() -> None:
    """The knowledge base: import and export question/answer files, explain a match."""


@kb.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even if some are bad.")
@click.option("--dry-run", is_flag=True, help="Check and count, write nothing.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*ALL_FORMATS, "synonyms"]),
    help="Override the extension (synonyms: one group of words per line).",
)
@with_appcontext
def import_command(files: tuple[str, ...], skip_bad: bool, dry_run: bool, fmt: str | None) -> None:
    """Import FILE... (.csv question,answer | .jsonl | .txt Q:/A: blocks | .xlsx workbook).

    Text files may be UTF-8, UTF-16 with a BOM, or GB18030/GBK (the summary says which was
    read); a CSV may be tab-separated (Excel's Unicode text). An .xlsx is read from its
    first sheet, whose first row names the columns as a CSV header does.

    A synonyms file (its name contains "synonym", or its first line is "# wxbot synonyms":
    one group of words per line) adds synonym groups.

    A pipe or device (a FIFO, <(...), /dev/stdin) needs --format, and is read once.

    Every row is checked first; bad rows are listed as file:line: reason and nothing is
    written unless all rows are good (or --skip-bad). Re-importing a file is harmless.
    """
    if fmt is None:
        _refuse_unsniffable(files)
    engine = current_app.extensions["wxbot.engine"]
    clock = current_app.extensions.get("wxbot.clock", time.time)
    from tqdm import tqdm

    # Two phases: every row is checked first (most of the time), then the database rows
    # (entries, questions, updates) are written, whose number is known once planned.
    bar = tqdm(unit=" rows", desc="checking", disable=None, file=sys.stderr, leave=False)

    def planned(total: int) -> None:
        bar.set_description("writing", refresh=False)
        bar.reset(total=total)

    try:
        report = import_files(
            engine,
            list(files),
            now=clock(),
            skip_bad=skip_bad,
            dry_run=dry_run,
            fmt=fmt,
            progress=lambda n, _what: bar.update(n),
            planned=planned,
            checked=bar.update,
        )
    except DBAPIError as exc:  # one transaction: a refusal anywhere in it leaves nothing
        from wxbot.migrations.guard import database_error

        raise click.ClickException(
            f"database error, nothing written: {database_error(exc)}"
        ) from None
    finally:
        bar.close()
    for line in report.errors[:MAX_ERRORS_SHOWN]:
        click.echo(line, err=True)
    if len(report.errors) > MAX_ERRORS_SHOWN:
        click.echo(f"... and {len(report.errors) - MAX_ERRORS_SHOWN} more", err=True)
    for name, how in report.read_as:
        click.echo(f"read {name} as {how}")
    good = report.added or report.updated or report.unchanged or report.synonyms
    if skip_bad and report.errors and not good:
        # --skip-bad skips bad rows among good ones; with none good (a mistyped path, the
        # wrong file) it was "imported: added 0 ... rejected 1" and exit 0 before.
        click.echo(f"nothing written: no good rows: {report.summary()}")
        raise SystemExit(1)
    if report.written:
        click.echo(f"imported: {report.summary()}")
        _embed_new_questions(clock())
    elif report.errors and not skip_bad:
        click.echo(f"nothing written: {report.summary()} (fix the rows above or use --skip-bad)")
        raise SystemExit(1)
    else:
        click.echo(f"dry run, nothing written: {report.summary()}")


_KINDS = (
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_unsniffable(files: tuple[str, ...]) -> None:
    """Without --format, the format of a FILE is told from its name and, for the synonyms
    header, from its first bytes: the import opens it twice. A pipe cannot be read twice (and
    one nobody writes to blocks the first open), so `wxbot kb import /tmp/fifo` hung; a
    device or socket is no file to sniff either. Refused at once, before anything is opened;
    with --format it is read once, as any file is. A name containing "synonym" says its
    format without a read (``named_synonyms``)."""
    for path in files:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # missing or unreadable: reported as the file's error, as before
        if stat.S_ISREG(mode) or named_synonyms(path):
            continue
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise click.BadParameter(
            f"{path} is {kind}, not a regular file: telling its format would read it (a"
            " pipe can be read only once); give --format csv|jsonl|txt|xlsx|synonyms (it"
            " applies to every FILE) to read it once as that",
            param_hint="'FILES...'",
        )


def _embed_new_questions(now: float) -> None:
    """With an embedding service configured: vectors for the questions that lack one."""
    from wxbot.qa import build_semantic
    from wxbot.qa.embeddings import EmbeddingError, embed_missing

    settings = current_app.extensions["wxbot.settings"]
    semantic = build_semantic(settings, None)
    if semantic is None:
        return
    try:
        done = embed_missing(current_app.extensions["wxbot.engine"], semantic.client, now=now)
    except EmbeddingError as exc:
        click.echo(f"embedding the questions failed ({exc}); the bot retries in the background")
        return
    click.echo(f"embedded {done} questions ({semantic.client.model})")


@kb.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*ALL_FORMATS, "synonyms"]),
    help="Default: from the extension (synonyms: the synonym groups, one a line).",
)
@with_appcontext
def export_command(file: str, fmt: str | None) -> None:
    """Write every entry to FILE ('-' = stdout) in an importable format: .csv, .jsonl,
    .txt (UTF-8) or .xlsx (an Excel workbook; not to stdout).

    A FILE whose name contains "synonym" (or --format synonyms) gets the synonym groups
    instead, as `wxbot kb import` reads such a file.
    """
    given = fmt
    if fmt is None and "synonym" in os.path.basename(file).lower():
        fmt = "synonyms"  # import reads a file so named as synonyms: write what it reads
    try:
        fmt = fmt or ("txt" if file == "-" else detect_format(file))
    except FormatError as exc:
        raise click.UsageError(str(exc)) from None
    _check_name(file, fmt, given)
    if fmt == "xlsx" and file == "-":
        raise click.UsageError("an .xlsx workbook is binary: give a FILE, not '-'")
    engine = current_app.extensions["wxbot.engine"]
    with engine.connect() as conn:
        if fmt == "synonyms":
            groups = [g.words for g in synonym_store.load(conn)]
        else:
            items = export_items(conn)

    def write_all(out: Any) -> int:
        if fmt == "synonyms":
            return synonym_store.write_text(groups, out)
        return write(items, fmt, out)

    if file == "-":
        count = _write_stdout(write_all)
    elif fmt == "xlsx":
        count = _write_xlsx(items, file)
    else:
        count = _write_file(file, write_all)
    what = "synonym groups" if fmt == "synonyms" else "entries"
    click.echo(f"exported {count} {what} to {file} ({fmt})", err=file == "-")


def _check_name(file: str, fmt: str, given: str | None) -> None:
    """Refuse a FILE whose extension names another format than the one written (``--format
    csv`` to faq.xlsx, synonyms to a workbook): Excel would refuse the file, and `kb import`
    would read it by its name, as what it is not."""
    if file == "-":
        return
    try:
        named = detect_format(file)
    except FormatError:
        return  # no extension that names a format: --format decided
    text_ok = fmt == "synonyms" and named == "txt"  # synonym groups are a text file
    if named == fmt or text_ok or (given is None and fmt == "synonyms" and named != "xlsx"):
        return
    what = "synonym groups (text)" if fmt == "synonyms" else fmt
    right = ".txt" if fmt == "synonyms" else f".{fmt}"
    raise click.UsageError(
        f"{file} is named as a .{os.path.splitext(file)[1][1:].lower()} file but would hold "
        f"{what}; name it {right}" + (" or leave out --format" if given else "")
    )


def _write_xlsx(items: list[Any], file: str) -> int:
    """The workbook is built in memory first: a knowledge base too big for a sheet leaves no
    half-written file behind."""
    buffer = io.BytesIO()
    try:
        count = write(items, "xlsx", buffer)
    except FormatError as exc:
        raise click.ClickException(str(exc)) from None
    _write_file(file, lambda out: out.write(buffer.getbuffer()), binary=True)
    return count


def _write_stdout(write_all: Callable[[IO[str]], int]) -> int:
    """'-': UTF-8 as the files are, whatever the terminal's locale (with a GBK console or
    PYTHONIOENCODING=ascii the export was a UnicodeEncodeError traceback), with the writers'
    own line ends (CSV's \r\n is not to become \r\r\n on Windows)."""
    if sys.stdout is None:  # `wxbot kb export - >&-`: a traceback before
        raise click.ClickException("standard output is closed: give a FILE instead of '-'")
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (an embedding caller's): it has its encoding
        return write_all(sys.stdout)
    sys.stdout.flush()
    out = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        return write_all(out)
    finally:
        out.flush()
        out.detach()  # leave the buffer to sys.stdout, open


def _write_file(file: str, write_all: Callable[[IO[Any]], int], binary: bool = False) -> int:
    """Write FILE through a temporary file beside it, renamed over it once complete: an
    export that fails (a full disk, Ctrl-C) leaves the file that was there (yesterday's
    export) as it was, not truncated. What is not a regular file (/dev/stdout, a pipe) is
    written in place: it is no file to replace; so is a file the operator may write in a
    folder they may not (no temporary file can be made there)."""
    kwargs: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        target = os.path.realpath(file)  # a symlink's file is replaced, not the link
        folder, name = os.path.split(target)
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        in_place = os.path.exists(file) and not os.path.isfile(file)
        if not in_place:
            try:
                out = open(tmp, "xb" if binary else "x", **kwargs)  # noqa: SIM115 - umask applies
            except PermissionError:
                if not os.path.isfile(file):
                    raise
                in_place = True
        if in_place:
            with open(file, "wb" if binary else "w", **kwargs) as out:
                return write_all(out)
        try:
            with out:
                count = write_all(out)
            if os.path.isfile(target):  # keep the permissions the operator gave it
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return count
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc.strerror}") from None


kb.add_command(match_command)  # `wxbot kb match`, in its own module
