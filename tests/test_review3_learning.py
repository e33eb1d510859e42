"""Review 3 of answering and teaching: a confirmation that approves an answer nobody saw,
a did-you-mean choice answered by an entry that merely took the offered one's id, and the
learned wordings' user counts. SQLite and MySQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import content, say
from wxbot.dialog.handlers import query
from wxbot.qa.importer import import_files

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = "o_teacher"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN, admin_openids=frozenset({ADMIN}))


def create(client, **body):  # type: ignore[no-untyped-def]
    resp = client.post("/admin/api/knowledge", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def offered(bot, openid: str, asked: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The did-you-mean choices' questions, in their numbered order."""
    reply = content(say(bot, openid, asked))
    assert reply.startswith("我不太确定"), reply
    return [line.split(". ", 1)[1] for line in reply.splitlines() if line[:2] in ("1.", "2.", "3.")]


def offer_everything(bot) -> None:  # type: ignore[no-untyped-def]
    kb = bot.deps.kb
    kb.confident, kb.sure, kb.suggest = 99.0, 99.0, 0.0


def test_yes_does_not_overwrite_an_answer_changed_after_it_was_shown(client, bot) -> None:  # type: ignore[no-untyped-def]
    entry = create(client, question="发货地在哪", answer="上海。")
    say(bot, ADMIN, "学习")
    say(bot, ADMIN, "发货地在哪")
    assert "上海。" in content(say(bot, ADMIN, "杭州。"))  # the overwrite question
    url = f"/admin/api/knowledge/{entry['id']}"
    resp = client.put(url, json={"answer": "北京仓发货。"}, headers=AUTH)  # another admin
    assert resp.status_code == 200
    again = content(say(bot, ADMIN, "是"))
    assert "北京仓发货。" in again and "「是」" in again  # the answer it would replace now
    assert client.get(url, headers=AUTH).get_json()["answer"] == "北京仓发货。"
    assert content(say(bot, ADMIN, "是")).startswith("已更新")  # seen, then overwritten
    assert client.get(url, headers=AUTH).get_json()["answer"] == "杭州。"


def test_a_choice_whose_entry_was_replaced_by_another_with_its_id_is_gone(
    app,
    client,
    bot,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    create(client, question="怎么申请退款", answer="在订单页点「申请退款」。")
    invoice = create(client, question="怎么申请发票", answer="在订单页点「开发票」。")
    offer_everything(bot)
    choices = offered(bot, "o_a", "我要申请")
    number = str(choices.index("怎么申请发票") + 1)
    # meanwhile an admin deletes that entry and imports a new one (which gets the free id)
    assert client.delete(f"/admin/api/knowledge/{invoice['id']}", headers=AUTH).status_code == 200
    path = tmp_path / "hours.jsonl"
    path.write_text('{"question": "营业时间", "answer": "9:00-17:00。"}\n', encoding="utf-8")
    import_files(app.extensions["wxbot.engine"], [str(path)], now=1.0e9)
    hours = client.get("/admin/api/knowledge?q=营业时间", headers=AUTH).get_json()["items"][0]
    assert hours["id"] == invoice["id"]  # the id the user's choice holds
    reply = content(say(bot, "o_a", number))
    assert reply == query.GONE, reply  # not the business hours
    assert client.get("/admin/api/learned", headers=AUTH).get_json()["total"] == 0


def test_a_choice_still_answers_after_its_entry_was_edited(client, bot) -> None:  # type: ignore[no-untyped-def]
    refund = create(client, question="怎么申请退款", answer="在订单页点「申请退款」。")
    create(client, question="怎么申请发票", answer="在订单页点「开发票」。")
    offer_everything(bot)
    choices = offered(bot, "o_a", "我要申请")
    url = f"/admin/api/knowledge/{refund['id']}"
    resp = client.put(url, json={"answer": "7 天内可退。"}, headers=AUTH)
    assert resp.status_code == 200
    resp = client.post(f"{url}/questions", json={"question": "如何退款"}, headers=AUTH)
    assert resp.status_code == 200
    assert content(say(bot, "o_a", str(choices.index("怎么申请退款") + 1))) == "7 天内可退。"


def test_learned_wordings_count_only_the_users_who_picked_that_entry(client, bot) -> None:  # type: ignore[no-untyped-def]
    refund = create(client, question="怎么申请退款", answer="退款。")
    create(client, question="怎么申请发票", answer="发票。")
    offer_everything(bot)
    asked = "钱能退回来吗申请"
    for openid, want in (("o_c", "怎么申请发票"), ("o_a", "怎么申请退款"), ("o_b", "怎么申请退款")):
        choices = offered(bot, openid, asked)
        say(bot, openid, str(choices.index(want) + 1))
    items = client.get("/admin/api/learned", headers=AUTH).get_json()["items"]
    assert [(i["entry_id"], i["question"]) for i in items] == [(refund["id"], asked)]
    assert items[0]["users"] == 2  # o_a and o_b; o_c picked the invoice entry
