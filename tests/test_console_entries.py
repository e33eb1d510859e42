"""The knowledge entry page: an entry's language, and adding or removing similar questions."""

from __future__ import annotations

from tests.console_helpers import (
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
    post,
)
from tests.helpers import content, say
from tests.test_console_pages import add_entry, entry
from wxbot.i18n import LANGUAGE_NAMES


def test_the_language_is_shown_and_edited(app, admin) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["How do I get an invoice"], "From the order page.")
    page = admin.get(f"/admin/knowledge/{eid}").text
    assert '<dd id="entry-language">不限语言</dd>' in page
    for code, name in LANGUAGE_NAMES.items():  # the catalogue's names, not retyped ones
        assert f'<option value="{code}">{name}（{code}）</option>' in page
    form = {"questions": "How do I get an invoice", "answer": "From the order page."}
    assert post(admin, f"/admin/knowledge/{eid}", language="en", **form).status_code == 303
    assert entry(app, eid).language == "en"
    page = admin.get(f"/admin/knowledge/{eid}").text
    assert '<option value="en" selected>English（en）</option>' in page
    assert "English（en）" in admin.get("/admin/knowledge").text  # the list's language column
    bad = post(admin, f"/admin/knowledge/{eid}", language="xx", **form)
    assert bad.status_code == 422 and "不支持的语言「xx」" in bad.text
    assert post(admin, f"/admin/knowledge/{eid}", language="", **form).status_code == 303
    assert entry(app, eid).language is None
    # a client that sends no language field (curl with the bearer token) leaves it alone
    post(admin, f"/admin/knowledge/{eid}", language="ja", **form)
    post(admin, f"/admin/knowledge/{eid}", **form)
    assert entry(app, eid).language == "ja"


def test_a_new_entry_with_a_language(app, admin) -> None:  # type: ignore[no-untyped-def]
    resp = post(
        admin, "/admin/knowledge/new", questions="ร้านเปิดกี่โมง", answer="9 โมง", language="th"
    )
    assert resp.status_code == 303
    eid = int(resp.headers["Location"].split("/")[-1].split("?")[0])
    assert entry(app, eid).language == "th"
    bad = post(admin, "/admin/knowledge/new", questions="问", answer="答", language="klingon")
    assert bad.status_code == 422 and "不支持的语言" in bad.text
    assert '<option value="klingon" selected>' in bad.text  # what was chosen is kept


def test_similar_questions_are_added_and_removed(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    other = add_entry(app, ["营业时间"], "9 点到 21 点。")
    assert "还没有相似问法" in admin.get(f"/admin/knowledge/{eid}").text
    resp = post(
        admin, f"/admin/knowledge/{eid}/questions", new_questions="发票在哪开\n\n能开专票吗\n"
    )
    assert resp.status_code == 303 and "saved=added" in resp.headers["Location"]
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开", "能开专票吗"]
    page = admin.get(resp.headers["Location"]).text
    assert "已添加相似问法" in page and 'name="question" value="能开专票吗"' in page
    assert content(say(bot, "o_1", "能开专票吗")) == "在订单页申请。"

    taken = post(admin, f"/admin/knowledge/{eid}/questions", new_questions="新问法\n营业时间")
    assert taken.status_code == 409 and "已经属于条目" in taken.text
    assert "新问法\n营业时间</textarea>" in taken.text  # what was typed is kept
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开", "能开专票吗"]
    assert entry(app, other).questions == ["营业时间"]
    empty = post(admin, f"/admin/knowledge/{eid}/questions", new_questions="  ")
    assert empty.status_code == 422 and "至少要有一个问题" in empty.text

    resp = post(admin, f"/admin/knowledge/{eid}/questions/remove", question="能开专票吗")
    assert resp.status_code == 303 and "saved=removed" in resp.headers["Location"]
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开"]
    again = post(admin, f"/admin/knowledge/{eid}/questions/remove", question="能开专票吗")
    assert again.status_code == 404 and "没有问题「能开专票吗」" in again.text
    post(admin, f"/admin/knowledge/{eid}/questions/remove", question="发票在哪开")
    last = post(admin, f"/admin/knowledge/{eid}/questions/remove", question="怎么开发票")
    assert last.status_code == 422 and "至少要保留一个问题" in last.text
    assert entry(app, eid).questions == ["怎么开发票"]
    gone = post(admin, "/admin/knowledge/424242/questions", new_questions="x")
    assert gone.status_code == 404
    assert post(admin, "/admin/knowledge/424242/questions/remove", question="x").status_code == 404
