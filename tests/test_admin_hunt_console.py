"""Console bugs found by an operator's and a careless client's hunt: a number too long for
int() in a URL or a form (a 500), and an entry's questions cut in pieces by a save that
changed only its answer."""

from __future__ import annotations

import pytest

from tests.console_helpers import ADMIN_TOKEN, admin_fixture, console_app_fixture, csrf
from tests.helpers import say

__all__ = ["admin_fixture", "console_app_fixture"]

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LONG = "1" * 5000  # past int()'s 4,300-digit limit: ValueError


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "path",
    [
        f"/admin/knowledge?page={LONG}",
        f"/admin/unanswered?page={LONG}",
        f"/admin/unanswered?done=taught&entry={LONG}",
        f"/admin/synonyms?page={LONG}",
        f"/admin/learned?page={LONG}",
        f"/admin/llm?page={LONG}",
        f"/admin/conversations?page={LONG}",
        f"/admin/knowledge?page=000{'0' * 5000}1",  # leading zeros: still page 1
    ],
)
def test_a_page_number_too_long_for_int_is_refused_not_a_500(app, path) -> None:  # type: ignore[no-untyped-def]
    app.config["TESTING"] = False  # a 500 is answered as in production, not raised
    resp = app.test_client().get(path, headers=BEARER)
    assert resp.status_code in (200, 400), (path, resp.status_code)
    assert "Traceback" not in resp.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_form_number_too_long_for_int_is_a_400_and_changes_nothing(app, bot) -> None:  # type: ignore[no-untyped-def]
    app.config["TESTING"] = False
    client = app.test_client()
    say(bot, "o_u", "火星上有没有信号")
    entry = client.post(
        "/admin/api/knowledge", json={"question": "怎么退款", "answer": "在订单页"}, headers=BEARER
    ).get_json()
    item = client.get("/admin/api/unanswered", headers=BEARER).get_json()["items"][0]
    for path, data in [
        (f"/admin/unanswered/{item['id']}/attach", {"entry_id": LONG}),
        (f"/admin/unanswered/{item['id']}/attach", {"entry_id": entry["id"], "similar": LONG}),
        (f"/admin/unanswered/{item['id']}/answer", {"answer": "有", "similar": LONG}),
        (f"/admin/unanswered/{item['id']}/dismiss", {"similar": LONG}),
        ("/admin/conversations/o_u/window", {"history_rounds": LONG}),
    ]:
        resp = client.post(path, data=data, headers=BEARER)
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert client.get("/admin/api/unanswered", headers=BEARER).get_json()["total"] == 1
    stored = client.get(f"/admin/api/knowledge/{entry['id']}", headers=BEARER).get_json()
    assert stored["questions"] == ["怎么退款"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_saving_an_entry_keeps_a_question_holding_a_unicode_line_separator(
    client, admin, separator
) -> None:  # type: ignore[no-untyped-def]
    """The API (and an import) stores such a question whole; the entry page's save split the
    textarea with str.splitlines(), so saving only the answer cut it in two (or refused the
    save with a 409 against the entry's own pieces)."""
    questions = [f"会员{separator}怎么退", f"会员{separator}退款"]
    resp = client.post(
        "/admin/api/knowledge",
        json={"questions": questions, "answer": "7 天内可退。"},
        headers=BEARER,
    )
    assert resp.status_code == 201, resp.get_json()  # the API stores such a question whole
    entry = resp.get_json()
    page = client.get(f"/admin/knowledge/{entry['id']}")
    assert page.status_code == 200
    resp = client.post(
        f"/admin/knowledge/{entry['id']}",
        data={
            "csrf_token": csrf(client),
            "version": resp.headers["ETag"].strip('"'),
            "questions": "\r\n".join(questions),  # as a browser sends the textarea
            "answer": "15 天内可退。",
            "language": "",
        },
    )
    assert resp.status_code == 303, resp.text[:500]
    stored = client.get(f"/admin/api/knowledge/{entry['id']}", headers=BEARER).get_json()
    assert stored["questions"] == questions and stored["answer"] == "15 天内可退。"
    # and one typed in the add box stays whole too
    resp = client.post(
        f"/admin/knowledge/{entry['id']}/questions",
        data={"csrf_token": csrf(client), "new_questions": f"会员费{separator}能退吗"},
    )
    assert resp.status_code == 303
    stored = client.get(f"/admin/api/knowledge/{entry['id']}", headers=BEARER).get_json()
    assert stored["questions"] == [*questions, f"会员费{separator}能退吗"]


def test_saving_only_the_answer_keeps_a_question_asked_on_two_lines(client, admin, bot) -> None:  # type: ignore[no-untyped-def]
    """A user's question sent on two lines, attached to an entry from the unanswered list, is
    one question of it; the entry page shows it on two lines of the textarea, and saving a
    new answer made it two questions (its first line alone now answered by this entry)."""
    created = client.post(
        "/admin/api/knowledge", json={"question": "怎么退款", "answer": "在订单页"}, headers=BEARER
    ).get_json()
    say(bot, "o_u", "你好\n请问火星上怎么退款")
    item = client.get("/admin/api/unanswered", headers=BEARER).get_json()["items"][0]
    resp = client.post(
        f"/admin/api/unanswered/{item['id']}/attach",
        json={"entry_id": created["id"]},
        headers=BEARER,
    )
    assert resp.status_code == 200
    questions = resp.get_json()["questions"]
    assert len(questions) == 2 and "\n" in questions[1]
    client.get(f"/admin/knowledge/{created['id']}")
    resp = client.post(
        f"/admin/knowledge/{created['id']}",
        data={
            "csrf_token": csrf(client),
            "version": resp.headers["ETag"].strip('"'),
            "questions": "\r\n".join(questions),  # the textarea, as the browser sends it
            "answer": "在订单页申请退款。",
            "language": "",
        },
    )
    assert resp.status_code == 303, resp.text[:500]
    stored = client.get(f"/admin/api/knowledge/{created['id']}", headers=BEARER).get_json()
    assert stored["questions"] == questions and stored["answer"] == "在订单页申请退款。"
    # an edit of the questions themselves is still saved as typed, one per line
    resp = client.post(
        f"/admin/knowledge/{created['id']}",
        data={
            "csrf_token": csrf(client),
            "questions": "怎么退款\n如何退款",
            "answer": "在订单页申请退款。",
        },
    )
    assert resp.status_code == 303
    stored = client.get(f"/admin/api/knowledge/{created['id']}", headers=BEARER).get_json()
    assert stored["questions"] == ["怎么退款", "如何退款"]


def test_teaching_a_question_asked_on_two_lines_keeps_it_one_question(client, admin, bot) -> None:  # type: ignore[no-untyped-def]
    """The unanswered page's 作为新条目回答 puts the question in a textarea, one wording a
    line: a question sent on two lines came back as two questions, its first line alone
    (here a greeting) then answered with this entry's answer."""
    say(bot, "o_u", "您好\n火星上有没有信号")
    item = client.get("/admin/api/unanswered", headers=BEARER).get_json()["items"][0]
    assert item["question"] == "您好\n火星上有没有信号"
    form = {
        "csrf_token": csrf(client, "/admin/unanswered"),
        "questions": "您好\r\n火星上有没有信号",  # the textarea as the browser sends it
        "answer": "暂时没有。",
    }
    resp = client.post(f"/admin/unanswered/{item['id']}/answer", data=form)
    assert resp.status_code == 303, resp.text[:500]
    entries = client.get("/admin/api/knowledge", headers=BEARER).get_json()["items"]
    assert [e["questions"] for e in entries] == [["您好\n火星上有没有信号"]]
    # sent twice (a double click): the second finds the entry the first made
    again = client.post(f"/admin/unanswered/{item['id']}/answer", data=form)
    assert again.status_code == 303 and again.location == resp.location
    # edited, it is taught as typed: one wording a line
    say(bot, "o_v", "月球上有没有\nwifi")
    item = client.get("/admin/api/unanswered", headers=BEARER).get_json()["items"][0]
    resp = client.post(
        f"/admin/unanswered/{item['id']}/answer",
        data={
            "csrf_token": csrf(client, "/admin/unanswered"),
            "questions": "月球上有没有wifi\r\n月球上能上网吗",
            "answer": "没有。",
        },
    )
    assert resp.status_code == 303
    entries = client.get("/admin/api/knowledge", headers=BEARER).get_json()["items"]
    assert entries[0]["questions"] == ["月球上有没有wifi", "月球上能上网吗"]
