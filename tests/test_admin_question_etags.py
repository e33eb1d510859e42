"""If-Match on adding and removing one question of an entry, as on PUT and DELETE: 412 when
the entry changed since the client (or the console page) read it, with nothing written; no
If-Match, or ``*``: last write wins. The check and the write are one transaction, so two
writers holding the same ETag cannot both succeed."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
    login,
    post,
)
from tests.test_console_pages import add_entry, entry
from wxbot.qa import store, versions, writer
from wxbot.qa import unanswered as unanswered_store
from wxbot.qa.models import KbChange

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
URL = "/admin/api/knowledge/{}"


def with_match(etag: str) -> dict[str, str]:
    return {**AUTH, "If-Match": etag}


def etag_of(client, eid: int) -> str:  # type: ignore[no-untyped-def]
    resp = client.get(URL.format(eid), headers=AUTH)
    assert resp.status_code == 200
    return str(resp.headers["ETag"])


def stored(app, eid: int) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    """Everything a refused write must leave alone, read back from the database: the entry
    (questions, answer, language, updated_at...), the knowledge version, the change log."""
    with app.extensions["wxbot.engine"].connect() as conn:
        row = store.get_entry(conn, eid)
        changes = conn.execute(
            KbChange.__table__.select().order_by(KbChange.__table__.c.version)
        ).all()
        return (
            row.to_dict() if row else None,
            versions.read_version(conn),
            [tuple(c) for c in changes],
        )


def changed_meanwhile(client, eid: int) -> None:  # type: ignore[no-untyped-def]
    """Another admin edits the entry's answer (no If-Match)."""
    resp = client.put(URL.format(eid), json={"answer": "另一位管理员的答案。"}, headers=AUTH)
    assert resp.status_code == 200


def add(client, eid: int, questions: list[str], headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(
        URL.format(eid) + "/questions", json={"questions": questions}, headers=headers
    )


def remove(client, eid: int, question: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.delete(
        URL.format(eid) + "/questions", query_string={"question": question}, headers=headers
    )


def assert_412(resp, eid: int) -> None:  # type: ignore[no-untyped-def]
    """The body PUT and DELETE answer a stale If-Match with."""
    assert resp.status_code == 412
    body = resp.get_json()
    assert set(body) == {"error", "status"} and body["status"] == 412
    assert body["error"].startswith(f"entry {eid} changed since it was read")


# -- the API ---------------------------------------------------------------------------------


def test_a_matching_etag_adds_and_removes_and_returns_the_new_etag(app, client) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    seen = etag_of(client, eid)
    added = add(client, eid, ["会员退款", "会员怎么退"], with_match(seen))
    assert added.status_code == 200 and added.get_json()["added"] == ["会员退款"]
    assert added.get_json()["questions"] == ["会员怎么退", "会员退款"]
    after_add = added.headers["ETag"]
    assert after_add != seen and after_add == etag_of(client, eid)
    assert entry(app, eid).questions == ["会员怎么退", "会员退款"]  # type: ignore[union-attr]
    # the tag it was sent with is spent: the next write must send the new one
    assert_412(add(client, eid, ["会员退钱"], with_match(seen)), eid)

    removed = remove(client, eid, "会员退款", with_match(after_add))
    assert removed.status_code == 200 and removed.get_json()["questions"] == ["会员怎么退"]
    assert removed.headers["ETag"] not in (after_add, "") and removed.headers["ETag"] == etag_of(
        client, eid
    )
    assert entry(app, eid).questions == ["会员怎么退"]  # type: ignore[union-attr]
    assert_412(add(client, eid, ["会员退钱"], with_match(after_add)), eid)
    # one of several tags matching is enough, as for PUT
    again = add(client, eid, ["会员退钱"], with_match(f'"nope", {removed.headers["ETag"]}'))
    assert again.status_code == 200


def test_a_stale_etag_is_412_and_writes_nothing(app, client) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["会员怎么退", "会员退款"], "7 天内。")
    seen = etag_of(client, eid)
    changed_meanwhile(client, eid)
    before = stored(app, eid)

    assert_412(add(client, eid, ["会员退钱"], with_match(seen)), eid)
    assert stored(app, eid) == before
    assert_412(remove(client, eid, "会员退款", with_match(seen)), eid)
    assert stored(app, eid) == before
    # a weak tag never matches (strong comparison), as for PUT
    current = etag_of(client, eid)
    assert_412(add(client, eid, ["会员退钱"], with_match("W/" + current)), eid)
    assert_412(remove(client, eid, "会员退款", with_match("W/" + current)), eid)
    assert stored(app, eid) == before
    # the 412 body is the one PUT answers with
    put = client.put(URL.format(eid), json={"answer": "x"}, headers=with_match(seen))
    assert_412(put, eid)
    assert put.get_json() == add(client, eid, ["会员退钱"], with_match(seen)).get_json()


def test_without_if_match_or_with_a_star_the_last_write_wins(app, client) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    seen = etag_of(client, eid)
    changed_meanwhile(client, eid)
    assert_412(add(client, eid, ["会员退款"], with_match(seen)), eid)  # the tag is stale...
    plain = add(client, eid, ["会员退款"], AUTH)  # ...but a client that sends none writes
    assert plain.status_code == 200 and plain.get_json()["added"] == ["会员退款"]
    changed_meanwhile(client, eid)
    star = add(client, eid, ["会员退钱"], with_match("*"))
    assert star.status_code == 200 and star.get_json()["added"] == ["会员退钱"]
    assert star.headers["ETag"] == etag_of(client, eid)
    client.put(URL.format(eid), json={"language": "zh"}, headers=AUTH)
    assert_412(remove(client, eid, "会员退款", with_match(star.headers["ETag"])), eid)
    assert remove(client, eid, "会员退款", AUTH).status_code == 200
    client.put(URL.format(eid), json={"language": None}, headers=AUTH)
    starred = remove(client, eid, "会员退钱", with_match("*"))
    assert starred.status_code == 200 and starred.headers["ETag"] == etag_of(client, eid)
    assert entry(app, eid).questions == ["会员怎么退"]  # type: ignore[union-attr]
    # "*" still needs the entry to exist
    assert add(client, 424242, ["x"], with_match("*")).status_code == 404
    assert remove(client, 424242, "x", with_match("*")).status_code == 404


def test_adding_only_questions_it_has_changes_nothing_and_is_no_conflict(app, client) -> None:  # type: ignore[no-untyped-def]
    """As a retried PUT: a write that leaves the entry as it is succeeds, even over a stale
    ETag; the ETag stays the same (it changes exactly when the entry does)."""
    eid = add_entry(app, ["会员怎么退", "会员退款"], "7 天内。")
    seen = etag_of(client, eid)
    before = stored(app, eid)[0]
    same = add(client, eid, ["会员退款", "会员 怎么退？"], with_match(seen))  # same keys
    assert same.status_code == 200 and same.get_json()["added"] == []
    assert same.headers["ETag"] == seen and stored(app, eid)[0] == before
    changed_meanwhile(client, eid)
    current = etag_of(client, eid)
    retried = add(client, eid, ["会员退款"], with_match(seen))  # stale, but nothing to lose
    assert retried.status_code == 200 and retried.get_json()["added"] == []
    assert retried.headers["ETag"] == current
    # one new question among them is a change: refused over the stale tag
    before = stored(app, eid)
    assert_412(add(client, eid, ["会员退款", "会员退钱"], with_match(seen)), eid)
    assert stored(app, eid) == before


def test_refusals_keep_their_status_and_a_stale_etag_comes_first(app, client) -> None:  # type: ignore[no-untyped-def]
    """PUT's order: the entry must exist (404), then the If-Match (412), then whatever depends
    on what the entry holds now (409 a question of another entry, 404 a question it has not,
    422 its last question)."""
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    other = add_entry(app, ["营业时间"], "9 点到 21 点。")
    seen = etag_of(client, eid)
    for headers in (AUTH, with_match(seen)):  # today's answers, with or without a right tag
        last = remove(client, eid, "会员怎么退", headers)
        assert last.status_code == 422 and "at least one question" in last.get_json()["error"]
        absent = remove(client, eid, "没有这个问题", headers)
        assert absent.status_code == 404 and "has no question" in absent.get_json()["error"]
        taken = add(client, eid, ["营业时间"], headers)
        assert taken.status_code == 409 and f"entry {other}" in taken.get_json()["error"]
        assert remove(client, 424242, "x", headers).status_code == 404
        assert add(client, 424242, ["x"], headers).status_code == 404
    changed_meanwhile(client, eid)
    before = stored(app, eid)
    assert_412(remove(client, eid, "会员怎么退", with_match(seen)), eid)
    assert_412(remove(client, eid, "没有这个问题", with_match(seen)), eid)
    assert_412(add(client, eid, ["营业时间"], with_match(seen)), eid)
    assert stored(app, eid) == before
    assert entry(app, other).questions == ["营业时间"]  # type: ignore[union-attr]


def test_a_question_added_after_removals_goes_last_not_first(app, client) -> None:  # type: ignore[no-untyped-def]
    """Removals leave gaps in the positions: a question added afterwards goes after the
    last one, and the entry's main question (its title in did-you-mean lists, the first
    column of an export) stays the same."""
    eid = add_entry(app, ["会员怎么退", "会员退款", "会员退钱", "会员退订"], "7 天内。")
    for question in ("会员怎么退", "会员退款", "会员退钱"):
        assert remove(client, eid, question, AUTH).status_code == 200
    assert entry(app, eid).questions == ["会员退订"]  # type: ignore[union-attr]
    resp = add(client, eid, ["取消会员"], AUTH)
    assert resp.status_code == 200 and resp.get_json()["questions"] == ["会员退订", "取消会员"]
    assert entry(app, eid).questions == ["会员退订", "取消会员"]  # type: ignore[union-attr]


def unanswered(app, question: str) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        unanswered_store.record_unanswered(conn, question, 1.0)
        return next(
            int(str(row["id"]))
            for row in unanswered_store.list_unanswered(conn, limit=100)[1]
            if row["question"] == question
        )


def test_attaching_an_unanswered_question_honours_if_match(app, client) -> None:  # type: ignore[no-untyped-def]
    """Attaching writes the entry (one more question) and answers with it and its ETag: a
    client that read the entry sends its ETag and gets a 412 if it changed meanwhile."""
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    seen = etag_of(client, eid)
    first = unanswered(app, "会员能退吗")
    url = f"/admin/api/unanswered/{first}/attach"
    changed_meanwhile(client, eid)
    before = stored(app, eid)
    assert_412(client.post(url, json={"entry_id": eid}, headers=with_match(seen)), eid)
    assert stored(app, eid) == before
    listed = client.get("/admin/api/unanswered", headers=AUTH).get_json()["items"]
    assert "会员能退吗" in [item["question"] for item in listed]  # still unanswered
    now = etag_of(client, eid)
    done = client.post(url, json={"entry_id": eid}, headers=with_match(now))
    assert done.status_code == 200 and done.get_json()["added"] == ["会员能退吗"]
    assert done.headers["ETag"] == etag_of(client, eid) != now
    second = unanswered(app, "会员退费")
    plain = client.post(
        f"/admin/api/unanswered/{second}/attach", json={"entry_id": eid}, headers=AUTH
    )
    assert plain.status_code == 200  # without If-Match: as before


# -- two writers holding the same ETag ---------------------------------------------------------


class Worker(threading.Thread):
    """Runs ``work`` and keeps what it returned or raised."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def outcome(self) -> Any:
        self.join(60)
        assert not self.is_alive(), f"{self.name} is stuck"
        if self.error is not None:
            raise self.error
        return self.result


def _writer_add(question: str) -> Callable[..., Any]:
    return lambda conn, eid, seen: writer.add_questions(
        conn, eid, [question], now=1.0, expected=seen
    )


def _writer_remove(question: str) -> Callable[..., Any]:
    return lambda conn, eid, seen: writer.remove_question(
        conn, eid, question, now=1.0, expected=seen
    )


@pytest.mark.parametrize(
    "first,second",
    [
        (_writer_add("会员退钱"), _writer_add("会员能退吗")),
        (_writer_remove("会员退款"), _writer_remove("怎么退会员")),
        (_writer_add("会员退钱"), _writer_remove("会员退款")),
    ],
    ids=["add-add", "remove-remove", "add-remove"],
)
def test_the_check_and_the_write_are_one_transaction(app, first, second) -> None:  # type: ignore[no-untyped-def]
    """On two connections: the second writer waits for the first one's transaction, then
    finds the entry changed (its check is not made before it holds the write lock)."""
    eid = add_entry(app, ["会员怎么退", "会员退款", "怎么退会员"], "7 天内。")
    engine = app.extensions["wxbot.engine"]
    seen = {entry(app, eid).version}  # type: ignore[union-attr]
    with engine.connect() as conn_a:
        tx = conn_a.begin()
        first(conn_a, eid, seen)  # checked and written, not committed yet

        def second_writer() -> int:
            with engine.begin() as conn_b:
                try:
                    second(conn_b, eid, seen)
                except writer.KnowledgeError as exc:
                    return exc.status
            return 200

        b = Worker("B", second_writer)
        b.start()
        time.sleep(0.5)
        assert b.is_alive(), "the second writer did not wait for the first one's transaction"
        tx.commit()
    assert b.outcome() == 412
    with engine.connect() as conn:  # the first writer's change, and only it
        assert store.get_entry(conn, eid).version != next(iter(seen))  # type: ignore[union-attr]


def test_two_adders_with_the_same_etag_one_wins(app, make_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Through HTTP, on two apps (two connection pools, as two processes): A is held inside its
    transaction after writing; B, sent with the same ETag meanwhile, must get a 412."""
    other_app = make_app(admin_token=ADMIN_TOKEN)
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    seen = etag_of(app.test_client(), eid)
    inside, release = threading.Event(), threading.Event()
    real_log = versions.log_changes

    def held(conn, version, entry_ids, now):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "A":
            inside.set()
            assert release.wait(30)
        return real_log(conn, version, entry_ids, now)

    monkeypatch.setattr(versions, "log_changes", held)
    a = Worker("A", lambda: add(app.test_client(), eid, ["会员退款"], with_match(seen)))
    b = Worker("B", lambda: add(other_app.test_client(), eid, ["会员退钱"], with_match(seen)))
    a.start()
    assert inside.wait(30), "A never reached its write"
    b.start()
    time.sleep(0.5)
    assert b.is_alive(), "B did not wait for A's transaction"
    release.set()
    won, lost = a.outcome(), b.outcome()
    assert (won.status_code, lost.status_code) == (200, 412)
    assert_412(lost, eid)
    assert entry(app, eid).questions == ["会员怎么退", "会员退款"]  # type: ignore[union-attr]
    assert won.headers["ETag"] == etag_of(app.test_client(), eid)


def _sender(
    app, eid: int, question: str, seen: str, barrier: threading.Barrier
) -> Callable[[], Any]:  # type: ignore[no-untyped-def]
    def send() -> Any:
        client = app.test_client()
        barrier.wait(30)
        return add(client, eid, [question], with_match(seen))

    return send


def test_two_adders_racing_freely_one_wins(app, make_app) -> None:  # type: ignore[no-untyped-def]
    """No help from the test: both sent at once (a barrier), several rounds."""
    apps = [app, make_app(admin_token=ADMIN_TOKEN)]
    eid = add_entry(app, ["会员怎么退"], "7 天内。")
    for round_ in range(4):
        seen = etag_of(app.test_client(), eid)
        barrier = threading.Barrier(2)
        questions = [f"第{round_}轮甲问法", f"第{round_}轮乙问法"]
        workers = [
            Worker(f"W{i}", _sender(apps[i], eid, questions[i], seen, barrier)) for i in range(2)
        ]
        for w in workers:
            w.start()
        statuses = [w.outcome().status_code for w in workers]
        assert sorted(statuses) == [200, 412], statuses
        have = entry(app, eid).questions  # type: ignore[union-attr]
        assert [q in have for q in questions] == [s == 200 for s in statuses]


# -- the console -----------------------------------------------------------------------------


def form_version(html: str, marker: str) -> str:
    """The version carried by the form that follows ``marker`` on the page."""
    start = html.index(marker)
    match = re.compile(r'name="version" value="([^"]*)"').search(html, start)
    assert match and match.start() < html.index("</form>", start), f"no version after {marker}"
    return match.group(1)


ADD_FORM = 'id="add-questions"'


def remove_form(question: str) -> str:
    return f'name="question" value="{question}"'


@pytest.fixture
def other(app):  # type: ignore[no-untyped-def]
    """A second admin, in another browser."""
    client = app.test_client()
    login(client)
    return client


def test_the_console_adds_only_to_the_entry_it_showed(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    page = admin.get(f"/admin/knowledge/{eid}").text
    shown = form_version(page, ADD_FORM)
    assert shown == entry(app, eid).version  # type: ignore[union-attr]
    ok = post(admin, f"/admin/knowledge/{eid}/questions", new_questions="发票在哪开", version=shown)
    assert ok.status_code == 303
    twice = post(
        admin, f"/admin/knowledge/{eid}/questions", new_questions="发票在哪开", version=shown
    )
    assert twice.status_code == 303  # a double click: nothing changes, no conflict
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开"]  # type: ignore[union-attr]

    page = admin.get(f"/admin/knowledge/{eid}").text
    shown = form_version(page, ADD_FORM)
    add(other, eid, ["能开专票吗"], AUTH)  # meanwhile, another admin
    before = stored(app, eid)
    stale = post(
        admin, f"/admin/knowledge/{eid}/questions", new_questions="电子发票", version=shown
    )
    assert stale.status_code == 409 and "在你打开之后被修改过" in stale.text
    assert "相似问法还没有添加" in stale.text
    assert "电子发票</textarea>" in stale.text  # what was typed is kept
    assert remove_form("能开专票吗") in stale.text  # the change it did not see is shown
    assert stored(app, eid) == before
    again = post(
        admin,
        f"/admin/knowledge/{eid}/questions",
        new_questions="电子发票",
        version=form_version(stale.text, ADD_FORM),
    )
    assert again.status_code == 303
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开", "能开专票吗", "电子发票"]  # type: ignore[union-attr]


def test_the_console_removes_only_from_the_entry_it_showed(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票", "发票在哪开", "能开专票吗"], "在订单页申请。")
    page = admin.get(f"/admin/knowledge/{eid}").text
    shown = form_version(page, remove_form("发票在哪开"))
    assert shown == form_version(page, remove_form("能开专票吗")) == entry(app, eid).version  # type: ignore[union-attr]
    changed_meanwhile(other, eid)
    before = stored(app, eid)
    stale = post(
        admin, f"/admin/knowledge/{eid}/questions/remove", question="发票在哪开", version=shown
    )
    assert stale.status_code == 409 and "这次没有删除问法" in stale.text
    assert "另一位管理员的答案。" in stale.text  # the change it did not see is shown
    assert stored(app, eid) == before
    fresh = form_version(stale.text, remove_form("发票在哪开"))
    again = post(
        admin, f"/admin/knowledge/{eid}/questions/remove", question="发票在哪开", version=fresh
    )
    assert again.status_code == 303
    assert entry(app, eid).questions == ["怎么开发票", "能开专票吗"]  # type: ignore[union-attr]
    # a form without a version (a script with the bearer token): last write wins, as before
    changed_meanwhile(other, eid)
    plain = admin.post(
        f"/admin/knowledge/{eid}/questions/remove", data={"question": "能开专票吗"}, headers=AUTH
    )
    assert plain.status_code == 303
    assert entry(app, eid).questions == ["怎么开发票"]  # type: ignore[union-attr]
