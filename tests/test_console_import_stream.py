"""Console uploads are stored and read a block at a time: an upload near the size limit is
checked on MariaDB too (pymysql sends a blob as hex, twice its size: a 9 MB upload in one
INSERT passed max_allowed_packet's 16 MiB), and the check never holds the upload whole."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from tests.console_helpers import (
    admin_fixture,  # noqa: F401 - the logged-in client
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf,
    wait_for_job,
)
from wxbot.console import jobs
from wxbot.console.models import MAX_UPLOAD_BYTES
from wxbot.qa.formats import stream


def upload(client, name: str, data: bytes):  # type: ignore[no-untyped-def]
    form = {"csrf_token": csrf(client, "/admin/import"), "file": (io.BytesIO(data), name)}
    return client.post("/admin/import", data=form, content_type="multipart/form-data")


def big_csv(size: int) -> tuple[bytes, int]:
    """A CSV of about ``size`` bytes (just under it), and its number of rows."""
    answer = "请在订单页申请退款，客服会在一个工作日内处理。" * 8  # ~550 bytes
    rows: list[bytes] = [b"question,answer\n"]
    total = len(rows[0])
    while True:
        row = f"第{len(rows)}个问题是什么,{answer}\n".encode()
        if total + len(row) > size:
            break
        rows.append(row)
        total += len(row)
    return b"".join(rows), len(rows) - 1


def test_an_upload_near_the_limit_is_stored_and_checked(app, admin) -> None:  # type: ignore[no-untyped-def]
    data, count = big_csv(MAX_UPLOAD_BYTES - 1000)
    assert len(data) > 9 * 2**20
    resp = upload(admin, "big.csv", data)
    assert resp.status_code == 303, resp.text[:300]
    job = resp.headers["Location"]
    state = wait_for_job(admin, job, ("checked", "failed"))
    assert state["status"] == "checked", admin.get(job).text[-2000:]
    assert f'<td id="r-added">{count}</td>' in admin.get(job).text
    engine = app.extensions["wxbot.engine"]
    with engine.connect() as conn:  # stored whole, byte for byte
        stored = conn.execute(select(func.length(jobs.imports.c.data))).scalar()
    assert stored == len(data)


def test_the_check_reads_the_stored_upload_a_block_at_a_time(app, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(stream, "READ_BLOCK", 4096)
    reads: list[int] = []
    real = jobs.StoredUpload.readinto

    def spy(self, buffer):  # type: ignore[no-untyped-def]
        reads.append(len(buffer))
        return real(self, buffer)

    monkeypatch.setattr(jobs.StoredUpload, "readinto", spy)
    data, count = big_csv(200_000)
    job = upload(admin, "faq.csv", data).headers["Location"]
    assert wait_for_job(admin, job, ("checked",))["status"] == "checked"
    assert f'<td id="r-added">{count}</td>' in admin.get(job).text
    assert len(reads) > 40 and max(reads) <= 4096  # never the upload at once


def test_an_upload_is_looked_at_and_stored_a_block_at_a_time(app, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The uploaded file (spooled to disk by werkzeug above 500 KB) is never read whole."""
    import tempfile

    from flask import Request

    sizes: list[int] = []

    class Spy(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def read(self, *args):  # type: ignore[no-untyped-def]
            sizes.append(args[0] if args else -1)
            return super().read(*args)

    monkeypatch.setattr(
        Request, "_get_file_stream", lambda *_args, **_kw: Spy(max_size=500 * 1024, mode="rb+")
    )
    resp = upload(admin, "big.csv", b"q,a\n" * (MAX_UPLOAD_BYTES // 4 + 1))
    assert resp.status_code == 413 and "MB" in resp.text
    assert upload(admin, "faq.csv", b" \r\n\t" * 300_000).status_code == 422  # blanks: empty
    assert upload(admin, "faq.xlsx", b"q,a\n" * 300_000).status_code == 422  # not a zip
    data, count = big_csv(3 * jobs.BLOCK)
    job = upload(admin, "faq.csv", data).headers["Location"]
    assert wait_for_job(admin, job, ("checked",))["status"] == "checked"
    assert f'<td id="r-added">{count}</td>' in admin.get(job).text
    assert sizes and all(0 < size <= jobs.BLOCK for size in sizes), sizes
