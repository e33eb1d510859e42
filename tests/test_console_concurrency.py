"""Several admins and several tabs at once in the web console: a form saved over a change it
never showed is refused with the current content (409), what was typed is kept; an entry
deleted meanwhile is a clear 404; a double-clicked form creates nothing twice."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf_of,
    login,
    post,
    wait_for_job,
)
from tests.helpers import say
from tests.test_console_pages import add_entry, entry, unanswered_ids
from tests.test_console_synonyms import group_with, groups, learn
from wxbot.qa import learning
from wxbot.qa.formats import parse_bytes
from wxbot.qa.importer import import_parsed

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def field(html: str, name: str) -> str:
    """The value of the first hidden field ``name`` on a page (a form's version)."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field on the page"
    return match.group(1)


def row_of(html: str, group_id: int) -> str:
    start = html.index(f'id="syn-{group_id}"')
    return html[start : html.index("</tr>", start)]


@pytest.fixture
def other(app):  # type: ignore[no-untyped-def]
    """A second admin, in another browser."""
    client = app.test_client()
    login(client)
    return client


# -- what another admin (or the bot) may change while an entry's page is open -----------------


def _console_answer(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    page = other.get(f"/admin/knowledge/{eid}").text
    form = {
        "questions": "怎么开发票",
        "answer": "B 写的新答案。",
        "version": field(page, "version"),
    }
    assert post(other, f"/admin/knowledge/{eid}", **form).status_code == 303
    return "B 写的新答案。"


def _console_question(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    resp = post(other, f"/admin/knowledge/{eid}/questions", new_questions="发票在哪开")
    assert resp.status_code == 303
    return "发票在哪开"


def _api(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    body = {"questions": ["怎么开发票", "能开专票吗"]}
    assert other.put(f"/admin/api/knowledge/{eid}", json=body, headers=BEARER).status_code == 200
    return "能开专票吗"


def _learned(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    learn(app, "发票怎么弄", eid)  # two users picked it from "did you mean"
    return "发票怎么弄"


def _attached(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    say(app.extensions["wxbot.bot"], "o_1", "周末有人值班吗")
    uid = unanswered_ids(app)["周末有人值班吗"]
    resp = post(other, f"/admin/unanswered/{uid}/attach", entry_id=str(eid))
    assert resp.status_code == 303
    return "周末有人值班吗"


def _imported(app, other, eid: int) -> str:  # type: ignore[no-untyped-def]
    data = "question,answer,similar\n怎么开发票,在订单页申请。,电子发票怎么开\n".encode()
    report = import_parsed(
        app.extensions["wxbot.engine"], [parse_bytes(data, "faq.csv")], now=2_000_000_000.0
    )
    assert report.written
    return "电子发票怎么开"


CHANGES: dict[str, Callable[[Any, Any, int], str]] = {
    "console-answer": _console_answer,
    "console-question": _console_question,
    "api": _api,
    "learned": _learned,
    "attached": _attached,
    "import": _imported,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_stale_save_shows_the_change_instead_of_overwriting_it(app, admin, other, change) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    page = admin.get(f"/admin/knowledge/{eid}").text
    shown = field(page, "version")
    kept = CHANGES[change](app, other, eid)  # meanwhile, in another tab / by the bot
    before = entry(app, eid)
    mine = {"questions": "怎么开发票\n开发票要多久", "answer": "A 写的答案。", "language": ""}
    resp = post(admin, f"/admin/knowledge/{eid}", version=shown, **mine)
    assert resp.status_code == 409
    assert entry(app, eid) == before  # nothing overwritten
    assert "在你打开之后被修改过" in resp.text
    assert kept in resp.text  # the change it would have dropped is shown
    assert "A 写的答案。</textarea>" in resp.text and "开发票要多久" in resp.text  # kept
    # saving again from that page is a choice made seeing the current entry
    again = post(admin, f"/admin/knowledge/{eid}", version=field(resp.text, "version"), **mine)
    assert again.status_code == 303
    assert entry(app, eid).answer == "A 写的答案。"


def test_a_double_clicked_save_is_no_conflict(app, admin) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    shown = field(admin.get(f"/admin/knowledge/{eid}").text, "version")
    form = {"questions": "怎么开发票\n发票在哪开", "answer": "订单页 › 发票。", "version": shown}
    assert post(admin, f"/admin/knowledge/{eid}", **form).status_code == 303
    assert post(admin, f"/admin/knowledge/{eid}", **form).status_code == 303  # same content
    assert entry(app, eid).questions == ["怎么开发票", "发票在哪开"]


def test_a_form_without_a_version_still_saves(app, admin) -> None:  # type: ignore[no-untyped-def]
    """Scripts that post the form with the bearer token and no version: last write wins."""
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    learn(app, "发票怎么弄", eid)
    resp = admin.post(
        f"/admin/knowledge/{eid}", data={"questions": "怎么开发票", "answer": "新"}, headers=BEARER
    )
    assert resp.status_code == 303 and entry(app, eid).questions == ["怎么开发票"]


def test_a_stale_delete_is_refused(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    page = admin.get(f"/admin/knowledge/{eid}").text
    _console_question(app, other, eid)
    resp = post(admin, f"/admin/knowledge/{eid}/delete", version=field(page, "version"))
    assert resp.status_code == 409 and "没有删除" in resp.text and "发票在哪开" in resp.text
    assert entry(app, eid) is not None
    fresh = post(admin, f"/admin/knowledge/{eid}/delete", version=field(resp.text, "version"))
    assert fresh.status_code == 303 and entry(app, eid) is None


def test_saving_an_entry_keeps_its_learned_wordings(app, admin) -> None:  # type: ignore[no-untyped-def]
    """A learned wording stays learned (listed, undoable) when the entry is saved."""
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    learn(app, "发票怎么弄", eid)
    page = admin.get(f"/admin/knowledge/{eid}").text
    form = {"questions": "怎么开发票\n发票怎么弄", "answer": "订单页 › 发票。"}
    resp = post(admin, f"/admin/knowledge/{eid}", version=field(page, "version"), **form)
    assert resp.status_code == 303
    with app.extensions["wxbot.engine"].connect() as conn:
        learned = [i["question"] for i in learning.list_learned(conn)[1]]
    assert learned == ["发票怎么弄"]
    assert "发票怎么弄" in admin.get("/admin/learned").text


# -- an entry deleted meanwhile --------------------------------------------------------------


def test_saving_an_entry_deleted_meanwhile_keeps_what_was_typed(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    page = admin.get(f"/admin/knowledge/{eid}").text
    assert post(other, f"/admin/knowledge/{eid}/delete").status_code == 303
    mine = {"questions": "怎么开发票\n开发票要多久", "answer": "A 写的答案。", "language": "zh"}
    resp = post(admin, f"/admin/knowledge/{eid}", version=field(page, "version"), **mine)
    assert resp.status_code == 404 and "已被删除" in resp.text
    assert "A 写的答案。</textarea>" in resp.text and "开发票要多久" in resp.text
    assert 'action="/admin/knowledge/new"' in resp.text  # one click saves it as a new entry
    assert '<option value="zh" selected>' in resp.text
    again = post(admin, "/admin/knowledge/new", **mine)
    assert again.status_code == 303


def test_everything_else_on_a_deleted_entry_is_a_clear_404(app, admin, other, bot) -> None:  # type: ignore[no-untyped-def]
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    say(bot, "o_1", "周末有人值班吗")
    uid = unanswered_ids(app)["周末有人值班吗"]
    assert post(other, f"/admin/knowledge/{eid}/delete").status_code == 303
    for resp in [
        post(admin, f"/admin/knowledge/{eid}/delete"),  # deleted twice
        post(admin, f"/admin/knowledge/{eid}/questions", new_questions="发票在哪开"),
        post(admin, f"/admin/knowledge/{eid}/questions/remove", question="怎么开发票"),
        post(admin, f"/admin/unanswered/{uid}/attach", entry_id=str(eid)),
    ]:
        assert resp.status_code == 404 and f"条目 #{eid} 不存在" in resp.text
    assert unanswered_ids(app) == {"周末有人值班吗": uid}  # still listed, to attach elsewhere
    api = admin.post(f"/admin/api/unanswered/{uid}/attach", json={"entry_id": eid}, headers=BEARER)
    assert api.status_code == 404 and unanswered_ids(app) == {"周末有人值班吗": uid}


# -- double submits --------------------------------------------------------------------------


def test_a_double_clicked_new_entry_is_created_once(app, admin) -> None:  # type: ignore[no-untyped-def]
    form = {"questions": "有停车场吗\n能停车吗", "answer": "地下二层。", "language": ""}
    first = post(admin, "/admin/knowledge/new", **form)
    second = post(admin, "/admin/knowledge/new", **form)  # or the back button and re-send
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"].split("?")[0] == second.headers["Location"].split("?")[0]
    assert admin.get("/admin/knowledge").text.count("有停车场吗") == 1
    different = post(admin, "/admin/knowledge/new", questions="有停车场吗", answer="没有。")
    assert different.status_code == 409 and "没有。</textarea>" in different.text


def test_a_double_clicked_answer_to_an_unanswered_question(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", "周末有人值班吗")
    uid = unanswered_ids(app)["周末有人值班吗"]
    form = {"questions": "周末有人值班吗", "answer": "周末 10:00-18:00 有同事值班。"}
    first = post(admin, f"/admin/unanswered/{uid}/answer", **form)
    second = post(admin, f"/admin/unanswered/{uid}/answer", **form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]  # "taught", the same entry
    assert admin.get("/admin/knowledge").text.count("周末有人值班吗") == 1


# -- synonym groups --------------------------------------------------------------------------


def test_a_stale_synonym_edit_or_delete_is_refused(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    post(admin, "/admin/synonyms", words="收据 小票")
    gid = group_with(app, "小票")
    page = admin.get("/admin/synonyms").text
    shown = field(row_of(page, gid), "version")
    fresh = field(row_of(other.get("/admin/synonyms").text, gid), "version")
    resp = post(other, f"/admin/synonyms/{gid}", words="收据 小票 凭条", version=fresh)
    assert resp.status_code == 303

    stale = post(admin, f"/admin/synonyms/{gid}", words="收据 小票 发票联", version=shown)
    assert stale.status_code == 409 and "在你打开之后被修改过" in stale.text
    assert groups(app)[gid] == ["收据", "小票", "凭条"]
    row = row_of(stale.text, gid)
    assert '<details class="edit" open>' in row and 'value="收据 小票 发票联"' in row  # typed
    assert "凭条" in row  # the current words are shown
    gone = post(admin, f"/admin/synonyms/{gid}/delete", version=shown)
    assert gone.status_code == 409 and gid in groups(app)

    again = post(
        admin, f"/admin/synonyms/{gid}", words="收据 小票 发票联", version=field(row, "version")
    )
    assert again.status_code == 303 and groups(app)[gid] == ["收据", "小票", "发票联"]
    twice = post(
        admin, f"/admin/synonyms/{gid}", words="收据 小票 发票联", version=field(row, "version")
    )
    assert twice.status_code == 303  # a double click changes nothing: no conflict


def test_a_double_clicked_new_synonym_group_is_added_once(app, admin) -> None:  # type: ignore[no-untyped-def]
    before = len(groups(app))
    first = post(admin, "/admin/synonyms", words="收据 小票")
    second = post(admin, "/admin/synonyms", words="小票, 收据")  # the same words, another order
    assert first.status_code == second.status_code == 303
    assert len(groups(app)) == before + 1
    assert "已经有这组同义词" in admin.get(second.headers["Location"]).text


def test_a_synonym_group_deleted_while_edited_keeps_the_typed_words(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    post(admin, "/admin/synonyms", words="收据 小票")
    gid = group_with(app, "小票")
    shown = field(row_of(admin.get("/admin/synonyms").text, gid), "version")
    assert post(other, f"/admin/synonyms/{gid}/delete").status_code == 303
    resp = post(admin, f"/admin/synonyms/{gid}", words="收据 小票 凭条", version=shown)
    assert resp.status_code == 404 and "已被删除" in resp.text
    assert 'value="收据 小票 凭条"' in resp.text  # in the box that adds a group


def test_an_unanswered_question_handled_meanwhile_keeps_the_typed_answer(
    app, admin, other, bot
) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_1", "周末有人值班吗")
    uid = unanswered_ids(app)["周末有人值班吗"]
    assert post(other, f"/admin/unanswered/{uid}/dismiss").status_code == 303
    form = {"questions": "周末有人值班吗\n周六上班吗", "answer": "周末 10:00-18:00 有同事值班。"}
    resp = post(admin, f"/admin/unanswered/{uid}/answer", **form)
    assert resp.status_code == 404 and "已经不在列表里" in resp.text
    assert "有同事值班。</textarea>" in resp.text and "周六上班吗" in resp.text
    assert 'action="/admin/knowledge/new"' in resp.text


# -- an import confirmed after the entries it touches changed ------------------------------------


def test_an_import_confirmed_after_its_entries_changed_is_checked_again(app, admin, other) -> None:  # type: ignore[no-untyped-def]
    """The check said "unchanged"; another admin then fixed that answer: confirming the
    import must not quietly put the file's old answer back."""
    eid = add_entry(app, ["怎么开发票"], "在订单页申请。")
    data = "question,answer\n怎么开发票,在订单页申请。\n有停车场吗,地下二层。\n"
    form = {
        "csrf_token": csrf_of(admin.get("/admin/import").text),
        "file": (io.BytesIO(data.encode()), "faq.csv"),
    }
    job = admin.post("/admin/import", data=form, content_type="multipart/form-data").headers[
        "Location"
    ]
    wait_for_job(admin, job, ("checked",))
    checked = admin.get(job).text
    assert '<td id="r-added">1</td>' in checked and '<td id="r-unchanged">1</td>' in checked
    _console_answer(app, other, eid)  # meanwhile: B's new answer

    post(admin, job + "/commit")
    assert wait_for_job(admin, job, ("checked", "done", "failed"))["status"] == "checked"
    assert entry(app, eid).answer == "B 写的新答案。"  # nothing written
    page = admin.get(job).text
    assert "检查之后" in page and '<td id="r-updated">1</td>' in page  # what it would do now

    post(admin, job + "/commit")  # confirmed again, knowingly
    assert wait_for_job(admin, job, ("done", "failed"))["status"] == "done"
    assert entry(app, eid).answer == "在订单页申请。"


def test_a_group_answer_after_one_of_its_questions_was_handled_keeps_the_answer(
    app, admin, other, bot
) -> None:  # type: ignore[no-untyped-def]
    for text in ("周末上班吗", "周末上班吗", "周六开门吗", "周末开门吗"):
        say(bot, "o_u", text)
    ids = unanswered_ids(app)
    members = [str(ids["周六开门吗"]), str(ids["周末开门吗"])]
    assert post(other, f"/admin/unanswered/{ids['周六开门吗']}/dismiss").status_code == 303
    resp = admin.post(
        f"/admin/unanswered/{ids['周末上班吗']}/answer",
        data={
            "csrf_token": csrf_of(admin.get("/admin/unanswered").text),
            "answer": "周末 10:00-16:00 营业。",
            "similar": members,
            "offered": members,
            "view": "grouped",
        },
    )
    assert resp.status_code == 404 and "已经不在列表里" in resp.text
    assert "周末 10:00-16:00 营业。</textarea>" in resp.text
    assert "周末开门吗" in resp.text and "周六开门吗" not in resp.text  # what is still listed
    assert set(unanswered_ids(app)) == {"周末上班吗", "周末开门吗"}  # nothing taught
