"""/admin/import: upload a CSV / JSONL / Q:A text file or an Excel workbook, see every bad row
(a dry run) before anything is written, then import, with progress for large files. The upload
goes through the same reader as ``wxbot kb import`` (any of its encodings; .xlsx)."""

from __future__ import annotations

import io
import os
from typing import IO

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from wxbot.console import jobs
from wxbot.console.models import MAX_UPLOAD_BYTES
from wxbot.console.web import admin, bp
from wxbot.qa.formats import ALL_FORMATS, OLD_EXCEL, FormatError, detect_format


def _upload_page(status: int = 200, error: str = "") -> tuple[str, int]:
    html = render_template(
        "console/import.html",
        nav="import",
        formats=ALL_FORMATS,
        recent=jobs.recent(admin().engine),
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        error=error,
    )
    return html, status


@bp.get("/import")
def import_page() -> tuple[str, int]:
    return _upload_page()


@bp.post("/import")
def upload() -> Response | tuple[str, int]:
    file = request.files.get("file")
    if file is None or not file.filename:
        return _upload_page(400, "请选择要导入的文件。")
    name = os.path.basename(file.filename.replace("\\", "/"))
    fmt = request.form.get("format") or None
    try:
        fmt = detect_format(name, fmt)
    except FormatError:
        if os.path.splitext(name)[1].lower() in OLD_EXCEL:
            return _upload_page(
                422,
                f"不能读取旧版 Excel 文件「{name}」：请在 Excel 或 WPS 里另存为 .xlsx（Excel 工作簿）或 CSV。",
            )
        return _upload_page(
            422,
            f"无法识别「{name}」的格式：请用 .csv、.jsonl、.txt 或 .xlsx 文件，或选择格式。",
        )
    # Werkzeug spools an upload of more than 500 KB to a temporary file: it is looked at and
    # stored from there a block at a time (jobs.create), never read whole into memory.
    upload = file.stream
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    if size > MAX_UPLOAD_BYTES:
        abort(
            413,
            f"文件超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB：请拆开，或在服务器上用 wxbot kb import。",
        )
    if _blank(upload):
        return _upload_page(422, f"「{name}」是空文件。")
    if fmt == "xlsx" and upload.read(2) != b"PK":
        # Said at once, not after a check: an .xlsx is a zip, and this is none (a CSV or an
        # old .xls renamed); the reader would refuse it with the same reason.
        return _upload_page(
            422,
            f"无法识别「{name}」的内容：它不是 Excel .xlsx 工作簿。旧版 .xls 请另存为 .xlsx；"
            "CSV 或文本文件请使用对应的扩展名。",
        )
    upload.seek(0)
    ops = admin()
    job_id = jobs.create(ops.engine, name, fmt, upload, ops.now())
    jobs.start(ops.engine, job_id, ops.clock, dry_run=True)
    return redirect(url_for("console.import_job", job_id=job_id), code=303)


def _blank(upload: IO[bytes]) -> bool:
    """Nothing in the upload but spaces and line breaks (read a block at a time, from its
    start, until something else); leaves it at its start."""
    upload.seek(0)
    blank = True
    while blank and (block := upload.read(jobs.BLOCK)):
        blank = not block.strip()
    upload.seek(0)
    return blank


def _job_or_404(job_id: str) -> dict:  # type: ignore[type-arg]
    ops = admin()
    job = jobs.get(ops.engine, job_id, ops.now())
    if job is None:
        abort(404, "没有这个导入任务（可能已过期或被取消）。")
    return job


@bp.get("/import/<job_id>")
def import_job(job_id: str) -> str:
    return render_template("console/import_job.html", nav="import", job=_job_or_404(job_id))


@bp.get("/import/<job_id>/status")
def import_status(job_id: str) -> Response:
    job = _job_or_404(job_id)
    return jsonify(status=job["status"], done=job["done_rows"], total=job["total_rows"])


@bp.post("/import/<job_id>/commit")
def import_commit(job_id: str) -> Response:
    job = _job_or_404(job_id)
    ops = admin()
    skip_bad = request.form.get("skip_bad") == "1"
    if job["report"].get("rejected") and not skip_bad:
        abort(400, "文件里有错误行：请确认跳过它们再导入。")
    if jobs.claim(ops.engine, job_id, skip_bad, ops.now()):
        jobs.start(ops.engine, job_id, ops.clock, dry_run=False)
    return redirect(url_for("console.import_job", job_id=job_id), code=303)


@bp.post("/import/<job_id>/discard")
def import_discard(job_id: str) -> Response:
    ops = admin()
    jobs.discard(ops.engine, job_id, ops.now())
    return redirect(url_for("console.import_page"), code=303)
