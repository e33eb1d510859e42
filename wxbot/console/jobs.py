"""Knowledge imports from an upload, run in a background thread: first a dry run that lists
every bad row, then (when the admin confirms) the real import.

The upload and the outcome live in ``console_imports``, so any process can show them. The
row count as it goes is kept in this process's memory and, on MySQL, written to the row after
each batch too (on SQLite the import's transaction holds the database's only write lock, so
other processes see the progress at the end of each phase).

The upload is written to its row and read back a block (``BLOCK``) at a time: never held
whole, and no statement carries more than a block (pymysql sends a blob as hex, twice its
size: a 9 MB upload in one INSERT was past MariaDB's default max_allowed_packet of 16 MiB).
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Engine, LargeBinary, and_, cast, delete, func, insert, or_, select, update

from wxbot.console.models import ConsoleImport
from wxbot.db import is_mysql, transaction, with_retries
from wxbot.qa.formats import Parsed, open_stream
from wxbot.qa.importer import ImportReport, import_parsed

log = logging.getLogger(__name__)

imports = ConsoleImport.__table__

MAX_ERRORS_KEPT = 1000  # bad rows listed on the page; the count is always exact
KEEP_SECONDS = 86_400  # finished jobs (and their uploads) older than this are deleted
STALLED_AFTER = 600  # a running job not heard of for this long died with its process
RUNNING = ("checking", "importing")
BLOCK = 1 << 20  # bytes of an upload written or read by one statement


@dataclass
class Progress:
    done: int = 0
    total: int = 0


_LIVE: dict[str, Progress] = {}  # jobs running in this process
_LIVE_LOCK = threading.Lock()


def create(engine: Engine, filename: str, fmt: str, data: bytes | IO[bytes], now: float) -> str:
    """A job for an upload: ``data``, its bytes or a seekable file holding them (read from
    where it stands, a block at a time)."""
    job_id = secrets.token_hex(16)
    upload = io.BytesIO(data) if isinstance(data, bytes) else data
    start = upload.tell()

    def run() -> None:
        upload.seek(start)  # (again when the transaction is retried)
        with transaction(engine) as conn:
            # finished jobs after a day; running ones once not heard of for a day (their
            # process died: nothing else would ever delete them and their upload)
            conn.execute(
                delete(imports).where(
                    imports.c.created_at < now - KEEP_SECONDS,
                    or_(
                        imports.c.status.not_in(RUNNING), imports.c.updated_at < now - KEEP_SECONDS
                    ),
                )
            )
            conn.execute(
                insert(imports).values(
                    id=job_id,
                    filename=filename[:255],
                    fmt=fmt,
                    data=b"",
                    status="checking",
                    skip_bad=False,
                    done_rows=0,
                    total_rows=0,
                    report="{}",
                    created_at=now,
                    updated_at=now,
                )
            )
            stored = imports.c.data
            while block := upload.read(BLOCK):  # appended in the job's own transaction
                appended = (
                    func.concat(stored, block)
                    if is_mysql(engine)
                    else cast(stored.op("||")(block), LargeBinary)  # SQLite: || joins blobs
                )
                conn.execute(update(imports).where(imports.c.id == job_id).values(data=appended))

    with_retries(run)
    return job_id


class StoredUpload(io.RawIOBase):
    """A job's upload as a file, read from its row a block at a time (SUBSTR, one query
    each); seekable, so that a file whose encoding is told late is read again."""

    def __init__(self, engine: Engine, job_id: str) -> None:
        super().__init__()
        self._engine = engine
        self._where = imports.c.id == job_id
        self._at = 0
        with engine.connect() as conn:
            self.size = int(
                conn.execute(select(func.length(imports.c.data)).where(self._where)).scalar() or 0
            )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self.size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.size - self._at)
        if size <= 0:
            return 0
        with self._engine.connect() as conn:
            block = conn.execute(
                select(func.substr(imports.c.data, self._at + 1, size)).where(self._where)
            ).scalar()
        block = bytes(block or b"")
        buffer[: len(block)] = block
        self._at += len(block)
        return len(block)


def get(engine: Engine, job_id: str, now: float) -> dict[str, Any] | None:
    """The job as the page shows it (without the upload's bytes)."""
    columns = [c for c in imports.c if c.name != "data"]
    with engine.connect() as conn:
        row = conn.execute(select(*columns).where(imports.c.id == job_id)).first()
    if row is None:
        return None
    job = dict(row._mapping)
    job["report"] = json.loads(job["report"] or "{}")
    with _LIVE_LOCK:
        live = _LIVE.get(job_id)
    if live is not None:
        job["done_rows"], job["total_rows"] = live.done, live.total
    elif job["status"] in RUNNING and now - job["updated_at"] > STALLED_AFTER:
        job["status"] = "stalled"
    return job


def recent(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    columns = [imports.c.id, imports.c.filename, imports.c.status, imports.c.created_at]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*columns).order_by(imports.c.created_at.desc()).limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def discard(engine: Engine, job_id: str, now: float) -> bool:
    """Delete a job that is not running (a stalled one included: its process died)."""
    with _LIVE_LOCK:
        if job_id in _LIVE:  # running here, however long it has been quiet
            return False

    def run() -> bool:
        with transaction(engine) as conn:
            stalled = and_(
                imports.c.status.in_(RUNNING), imports.c.updated_at < now - STALLED_AFTER
            )
            done = conn.execute(
                delete(imports).where(
                    imports.c.id == job_id, or_(imports.c.status.not_in(RUNNING), stalled)
                )
            )
            return done.rowcount > 0

    return with_retries(run)


def claim(engine: Engine, job_id: str, skip_bad: bool, now: float) -> bool:
    """checked -> importing, once (a double click or a second tab starts nothing twice)."""

    def run() -> bool:
        with transaction(engine) as conn:
            done = conn.execute(
                update(imports)
                .where(imports.c.id == job_id, imports.c.status == "checked")
                .values(status="importing", skip_bad=skip_bad, done_rows=0, updated_at=now)
            )
            return done.rowcount == 1

    return with_retries(run)


def start(engine: Engine, job_id: str, clock: Callable[[], float], dry_run: bool) -> None:
    with _LIVE_LOCK:
        _LIVE[job_id] = Progress()
    thread = threading.Thread(
        target=_run, args=(engine, job_id, clock, dry_run), name="wxbot-import", daemon=True
    )
    thread.start()


def _run(engine: Engine, job_id: str, clock: Callable[[], float], dry_run: bool) -> None:
    progress = _LIVE[job_id]
    try:
        columns = [c for c in imports.c if c.name != "data"]  # read as it is checked
        with engine.connect() as conn:
            job = conn.execute(select(*columns).where(imports.c.id == job_id)).one()
        parsed = open_stream(StoredUpload(engine, job_id), job.filename, job.fmt)

        def planned(total: int) -> None:
            progress.total = total
            _save_progress(engine, job_id, progress, clock())

        def advanced(rows: int, _what: str) -> None:
            progress.done += rows
            _save_progress(engine, job_id, progress, clock())

        report = import_parsed(
            engine,
            [parsed],
            now=clock(),
            skip_bad=dry_run or job.skip_bad,  # a dry run plans the good rows to count them
            dry_run=dry_run,
            progress=advanced,
            planned=planned,
            # the import writes only what the admin confirmed: if the entries it touches
            # changed since the check, it writes nothing and is a checked job again
            basis=None if dry_run else json.loads(job.report or "{}").get("basis"),
        )
        status = "checked" if dry_run or report.stale else ("done" if report.written else "failed")
        outcome = {**_report(report), "read_as": read_as(parsed), "rechecked": report.stale}
        _finish(engine, job_id, status, outcome, clock(), keep_data=status == "checked")
    except Exception as exc:
        log.exception("console import %s failed", job_id)
        _finish(engine, job_id, "failed", {"failure": str(exc)[:500]}, clock(), keep_data=False)
    finally:
        with _LIVE_LOCK:
            _LIVE.pop(job_id, None)


def _report(report: ImportReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "written": report.written,
        "basis": report.basis,
        "errors": [_split(line) for line in report.errors[:MAX_ERRORS_KEPT]],
    }


def read_as(parsed: Parsed) -> str:
    """How the upload was read, as the page says it ("" if it could not be read)."""
    if parsed.sheet:
        more = f"（共 {parsed.sheets} 个工作表，只读取这一个）" if parsed.sheets > 1 else ""
        return f"Excel 工作簿，工作表「{parsed.sheet}」{more}"
    if not parsed.encoding:
        return ""
    encoding = {"GB18030": "GB18030（GBK）"}.get(parsed.encoding, parsed.encoding)
    encoding = encoding.replace(" with BOM", "（带 BOM）")
    return f"{encoding} 编码" + ("，制表符分隔" if parsed.delimiter == "\t" else "")


def _split(line: str) -> dict[str, str]:
    """'file:12: reason' -> {"where": "12", "reason": "reason"} (the file is always the upload)."""
    head, sep, reason = line.partition(": ")
    where = head.rsplit(":", 1)[1] if ":" in head else ""
    return (
        {"where": where, "reason": reason}
        if sep and where.isdigit()
        else {"where": "", "reason": line}
    )


def _save_progress(engine: Engine, job_id: str, progress: Progress, now: float) -> None:
    if not is_mysql(engine):
        return  # the import holds SQLite's write lock: this process's memory has the figures
    with transaction(engine) as conn:
        conn.execute(
            update(imports)
            .where(imports.c.id == job_id)
            .values(done_rows=progress.done, total_rows=progress.total, updated_at=now)
        )


def _finish(
    engine: Engine, job_id: str, status: str, report: dict[str, Any], now: float, keep_data: bool
) -> None:
    values: dict[str, Any] = {"status": status, "report": json.dumps(report), "updated_at": now}
    if not keep_data:
        values["data"] = b""
    progress = _LIVE.get(job_id)
    if progress is not None:
        values.update(done_rows=progress.done, total_rows=progress.total)

    def run() -> None:
        with transaction(engine) as conn:
            conn.execute(update(imports).where(imports.c.id == job_id).values(values))

    with_retries(run)
