"""Console pages with Flask's test client: unanswered, knowledge, conversations, dashboard."""

from __future__ import annotations

import csv
import io

import pytest

from tests.console_helpers import (
    console_app_fixture,  # noqa: F401 - the app fixture
    login,
    post,
)
from tests.helpers import say
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.qa import store, unanswered, writer


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    login(client)
    return client


def add_entry(app, questions: list[str], answer: str) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        return writer.create_entry(conn, questions, answer, now=0, source="api")


def unanswered_ids(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return {
            str(i["question"]): int(i["id"]) for i in unanswered.list_unanswered(conn, 0, 100)[1]
        }


def entry(app, entry_id: int) -> store.EntryRow | None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return store.get_entry(conn, entry_id)


# -- unanswered -------------------------------------------------------------------------------


def test_unanswered_are_grouped_counted_and_newest_first(app, admin, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", "会员能退款吗")
    clock.advance(60)
    say(bot, "o_2", "会员能退款吗？")  # the same question, other punctuation
    say(bot, "o_3", "会员 能 退款 吗")
    clock.advance(60)
    say(bot, "o_4", "发票抬头写错了")
    page = admin.get("/admin/unanswered").text
    assert page.index("发票抬头写错了") < page.index("会员能退款吗")  # newest first
    assert "3 次" in page and "1 次" in page
    by_count = admin.get("/admin/unanswered?sort=count").text
    assert by_count.index("会员能退款吗") < by_count.index("发票抬头写错了")


def test_teach_an_unanswered_question_as_a_new_entry(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    assert say(bot, "o_1", "周末有人值班吗").content.startswith(DONT_KNOW)
    uid = unanswered_ids(app)["周末有人值班吗"]
    resp = post(
        admin,
        f"/admin/unanswered/{uid}/answer",
        questions="周末有人值班吗\n周六上班吗",
        answer="周末 10:00-18:00 有同事值班。",
    )
    assert resp.status_code == 303 and "done=taught" in resp.headers["Location"]
    assert say(bot, "o_1", "周六上班吗").content == "周末 10:00-18:00 有同事值班。"
    assert unanswered_ids(app) == {}
    assert "已教会" in admin.get(resp.headers["Location"]).text


def test_a_refused_answer_keeps_what_the_admin_typed(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    add_entry(app, ["营业时间"], "9 点到 21 点。")
    say(bot, "o_1", "几点关门呀")
    uid = unanswered_ids(app)["几点关门呀"]
    resp = post(admin, f"/admin/unanswered/{uid}/answer", questions="几点关门呀", answer="  ")
    assert resp.status_code == 422 and "答案不能为空" in resp.text
    resp = post(
        admin,
        f"/admin/unanswered/{uid}/answer",
        questions="几点关门呀\n营业时间",
        answer="晚上 9 点。",
    )
    assert resp.status_code == 409 and "已经属于条目" in resp.text
    assert "晚上 9 点。" in resp.text and "几点关门呀\n营业时间" in resp.text  # kept
    assert unanswered_ids(app) == {"几点关门呀": uid}  # nothing stored


def test_attach_an_unanswered_question_to_an_entry(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    hours = add_entry(app, ["营业时间是几点"], "9 点到 21 点。")
    other = add_entry(app, ["怎么退款"], "在订单页申请。")
    say(bot, "o_1", "晚上几点还有人")
    uid = unanswered_ids(app)["晚上几点还有人"]
    page = admin.get("/admin/unanswered").text
    assert f'name="entry_id" value="{hours}"' in page  # the matcher's guess, one click away
    found = admin.get(f"/admin/unanswered/{uid}/attach?q=退款").text
    assert f'name="entry_id" value="{other}"' in found and "怎么退款" in found
    assert admin.get("/admin/knowledge/search.json?q=营业").get_json() == {
        "items": [{"id": hours, "question": "营业时间是几点"}]
    }
    resp = post(admin, f"/admin/unanswered/{uid}/attach", entry_id=str(hours))
    assert resp.status_code == 303 and "done=attached" in resp.headers["Location"]
    assert entry(app, hours).questions == ["营业时间是几点", "晚上几点还有人"]
    assert say(bot, "o_1", "晚上几点还有人").content == "9 点到 21 点。"
    again = post(admin, f"/admin/unanswered/{uid}/attach", entry_id=str(hours))
    assert again.status_code == 404 and "已经不在列表里" in again.text


def test_attach_refusals(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", "怎么联系客服")
    uid = unanswered_ids(app)["怎么联系客服"]
    assert post(admin, f"/admin/unanswered/{uid}/attach", entry_id="999").status_code == 404
    assert post(admin, f"/admin/unanswered/{uid}/attach", entry_id="abc").status_code == 422
    assert post(admin, "/admin/unanswered/424242/attach", entry_id="1").status_code == 404
    assert unanswered_ids(app) == {"怎么联系客服": uid}


def test_dismiss(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", "哈哈哈哈")
    uid = unanswered_ids(app)["哈哈哈哈"]
    assert post(admin, f"/admin/unanswered/{uid}/dismiss").status_code == 303
    assert unanswered_ids(app) == {}
    assert post(admin, f"/admin/unanswered/{uid}/dismiss").status_code == 404


# -- knowledge --------------------------------------------------------------------------------


def test_search_view_edit_delete(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    add_entry(app, ["营业时间"], "9 点到 21 点。")
    listing = admin.get("/admin/knowledge?q=发票").text
    assert "怎么开发票" in listing and "营业时间" not in listing
    assert "怎么开发票" in admin.get(f"/admin/knowledge/{eid}").text
    resp = post(
        admin,
        f"/admin/knowledge/{eid}",
        questions="怎么开发票\n发票在哪开\n",
        answer="订单页 › 发票。",
    )
    assert resp.status_code == 303
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开"]
    assert say(bot, "o_1", "发票在哪开").content == "订单页 › 发票。"
    resp = post(admin, f"/admin/knowledge/{eid}", questions="", answer="x")
    assert resp.status_code == 422 and "至少要有一个问题" in resp.text
    assert "订单页 › 发票。" not in resp.text and ">x</textarea>" in resp.text  # what was typed
    assert post(admin, f"/admin/knowledge/{eid}/delete").status_code == 303
    assert entry(app, eid) is None
    assert admin.get(f"/admin/knowledge/{eid}").status_code == 404
    assert post(admin, f"/admin/knowledge/{eid}/delete").status_code == 404


def test_new_entry(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    resp = post(admin, "/admin/knowledge/new", questions="有停车场吗", answer="地下二层。")
    assert resp.status_code == 303
    assert say(bot, "o_1", "有停车场吗").content == "地下二层。"
    dup = post(admin, "/admin/knowledge/new", questions="有停车场吗", answer="别的")
    assert dup.status_code == 409 and "别的" in dup.text


def test_export_reimports_to_the_same_knowledge(app, admin) -> None:  # type: ignore[no-untyped-def]
    add_entry(app, ["问一", "问一b"], "答, 一")
    add_entry(app, ["问二"], "答二\n第二行")
    resp = admin.get("/admin/knowledge/export?format=csv")
    assert resp.headers["Content-Disposition"] == "attachment; filename=knowledge.csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows == [
        ["question", "answer", "similar", "language"],
        ["问一", "答, 一", "问一b", ""],
        ["问二", "答二\n第二行", "", ""],
    ]
    assert admin.get("/admin/knowledge/export?format=jsonl").text.count("\n") == 2
    assert admin.get("/admin/knowledge/export?format=xml").status_code == 400


# -- conversations ----------------------------------------------------------------------------


def test_conversations_list_detail_clear_forget(app, admin, bot, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the 1-in-500 opportunistic clean-up after a message would evict o_old's expired context
    monkeypatch.setattr(bot, "_maybe_clean_up", lambda: None)
    say(bot, "o_old", "你好")
    clock.advance(3600)  # o_old's context expired (not evicted yet): still listed
    say(bot, "o_new", "学习")  # not allowed to teach; a state stays WAIT_QUERY
    say(bot, "o_new", "天气")
    page = admin.get("/admin/conversations").text
    assert page.index("o_new") < page.index("o_old") and "已过期" in page
    detail = admin.get("/admin/conversations/o_new").text
    assert "天气：等待城市" in detail and "学习" in detail and 'class="bubble user"' in detail
    assert post(admin, "/admin/conversations/o_new/clear").status_code == 303
    detail = admin.get("/admin/conversations/o_new").text
    assert "没有历史记录" in detail and "天气：等待城市" in detail  # state kept
    assert post(admin, "/admin/conversations/o_new/forget").status_code == 303
    assert admin.get("/admin/conversations/o_new").status_code == 404
    assert post(admin, "/admin/conversations/o_new/clear").status_code == 404


# -- dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_today_and_this_week(app, admin, bot, clock) -> None:  # type: ignore[no-untyped-def]
    add_entry(app, ["营业时间"], "9 点到 21 点。")
    add_entry(app, ["营业执照"], "见官网。")
    clock.now = 1_800_000_000.0 - 86_400  # a Tuesday in Asia/Shanghai
    say(bot, "o_1", "营业时间")  # answered
    clock.now = 1_800_000_000.0  # Wednesday
    say(bot, "o_1", "营业时间")  # answered
    say(bot, "o_2", "周末营业时间一样吗")  # suggested: near, not sure enough
    say(bot, "o_3", "火星天气预报准不准")  # unknown
    say(bot, "o_3", "人工")  # a hand-off
    page = admin.get("/admin/").text
    assert '<strong id="messages-today">4</strong>' in page
    assert '<strong id="messages-week">5</strong>' in page
    assert "50%" in page and "25%" in page  # answered 2/4, suggested 1/4, unknown 1/4
    assert "转人工 1" in page and "新用户 3" in page
    assert '营业时间</a> <span class="count">2 次' in page  # top question by hits
    assert "火星天气预报准不准" in page  # top unanswered
    assert page.count('<rect class="unknown"') == 14
