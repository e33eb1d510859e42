"""Importing an uploaded file from the console: a dry run lists the bad rows before anything
is written; then the import, in a background thread whose progress the page polls."""

from __future__ import annotations

import io

import pytest

from tests.console_helpers import (
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf,
    login,
    wait_for_job,
)
from tests.helpers import say
from wxbot.console import jobs
from wxbot.console.models import MAX_UPLOAD_BYTES
from wxbot.qa import importer, store, writer
from wxbot.qa.formats import parse_bytes

GOOD_AND_BAD = (
    "question,answer\n"
    "退货地址在哪,杭州市文三路 1 号。\n"
    "运费谁出,质量问题我们承担。\n"
    "只有一列\n"
    "怎么改地址|地址填错了,发货前可在订单页修改。\n"
)


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    login(client)
    return client


def upload(client, name: str, content: bytes | str, **fields: str):  # type: ignore[no-untyped-def]
    data = content.encode() if isinstance(content, str) else content
    form = {"csrf_token": csrf(client, "/admin/import"), "file": (io.BytesIO(data), name), **fields}
    return client.post("/admin/import", data=form, content_type="multipart/form-data")


def entries(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return store.counts(conn)["entries"]


def test_dry_run_lists_the_bad_row_then_the_rest_is_imported(app, admin) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        writer.create_entry(conn, ["营业时间"], "9 点到 21 点。", now=0, source="api")
    resp = upload(admin, "faq.csv", GOOD_AND_BAD)
    assert resp.status_code == 303
    job = resp.headers["Location"]
    assert wait_for_job(admin, job, ("checked",))["status"] == "checked"
    page = admin.get(job).text
    assert '<td id="r-added">3</td>' in page and '<td id="r-rejected" class="bad">1</td>' in page
    assert "<td>4</td><td>应为 2 列（问题,答案），实际 1 列。</td>" in page
    assert entries(app) == 1  # nothing written by the check
    refused = admin.post(job + "/commit", data={"csrf_token": csrf(admin, job)})
    assert refused.status_code == 400  # bad rows must be skipped knowingly
    resp = admin.post(job + "/commit", data={"csrf_token": csrf(admin, job), "skip_bad": "1"})
    assert resp.status_code == 303
    state = wait_for_job(admin, job, ("done", "failed"))
    assert state["status"] == "done" and state["done"] == state["total"] == 3 + 4
    assert entries(app) == 4
    assert "导入完成" in admin.get(job).text
    again = admin.post(job + "/commit", data={"csrf_token": csrf(admin, job), "skip_bad": "1"})
    assert again.status_code == 303 and entries(app) == 4  # a second click starts nothing


def test_a_clean_file_in_every_format(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    files = {
        "a.jsonl": '{"questions": ["有停车场吗", "能停车吗"], "answer": "地下二层。"}\n',
        "b.txt": "Q: 几点开门\nA: 9 点。\n",
        "c.data": "问题,答案\n会员怎么退,7 天内可退。\n",
    }
    for name, content in files.items():
        extra = {"format": "csv"} if name == "c.data" else {}
        job = upload(admin, name, content, **extra).headers["Location"]
        wait_for_job(admin, job, ("checked",))
        admin.post(job + "/commit", data={"csrf_token": csrf(admin, job)})
        assert wait_for_job(admin, job, ("done", "failed"))["status"] == "done"
    assert entries(app) == 3
    assert say(bot, "o_1", "能停车吗").content == "地下二层。"
    assert "a.jsonl" in admin.get("/admin/import").text  # the recent imports


@pytest.mark.parametrize(
    "name, content, status, message",
    [
        ("faq.csv", b"", 422, "空文件"),
        ("faq.xlsx", b"q,a\n", 422, "无法识别"),
        ("", b"q,a\n", 400, "请选择"),
    ],
)
def test_uploads_refused_with_a_reason(admin, name, content, status, message) -> None:  # type: ignore[no-untyped-def]
    resp = upload(admin, name, content)
    assert resp.status_code == status and message in resp.text


def test_a_file_too_large_is_refused(admin) -> None:  # type: ignore[no-untyped-def]
    resp = upload(admin, "big.csv", b"q,a\n" * (MAX_UPLOAD_BYTES // 4 + 1))
    assert resp.status_code == 413 and "MB" in resp.text


def test_an_unknown_encoding_is_a_reported_error(admin) -> None:  # type: ignore[no-untyped-def]
    job = upload(admin, "broken.csv", b"q,\xff\xff\n").headers["Location"]
    wait_for_job(admin, job, ("checked",))
    page = admin.get(job).text
    assert "既不是 UTF-8 也不是 GBK/GB18030 编码" in page and "没有需要写入的行" in page


def test_discard_and_stalled_jobs(app, admin, clock) -> None:  # type: ignore[no-untyped-def]
    job = upload(admin, "faq.csv", "问,答\n").headers["Location"]
    wait_for_job(admin, job, ("checked",))
    assert admin.post(job + "/discard", data={"csrf_token": csrf(admin, job)}).status_code == 303
    assert admin.get(job).status_code == 404
    engine = app.extensions["wxbot.engine"]
    orphan = jobs.create(engine, "lost.csv", "csv", b"q,a\n", clock())  # its process died
    assert "检查中" in admin.get(f"/admin/import/{orphan}").text
    clock.advance(jobs.STALLED_AFTER + 1)
    assert "已中断" in admin.get(f"/admin/import/{orphan}").text


def test_the_importer_announces_its_total_before_writing(app) -> None:  # type: ignore[no-untyped-def]
    rows = "".join(f"问题{i},答案{i}\n" for i in range(5000))
    planned: list[int] = []
    done: list[int] = []
    report = importer.import_parsed(
        app.extensions["wxbot.engine"],
        [parse_bytes(rows.encode(), "x.csv")],
        now=0,
        progress=lambda n, _what: done.append(n),
        planned=planned.append,
    )
    assert report.added == 5000 and planned == [10_000]
    assert sum(done) == 10_000 and len(done) > 2  # several batches: progress as it goes


def test_other_forms_are_small(admin) -> None:  # type: ignore[no-untyped-def]
    resp = admin.post(
        "/admin/knowledge/new",
        data={"csrf_token": csrf(admin), "questions": "问", "answer": "答" * 2_000_000},
    )
    assert resp.status_code == 413 and entries(admin.application) == 0
