"""Learning from use: did-you-mean picks become similar questions; unanswered questions are
grouped, attached or answered; the admin API for all of it, on SQLite and MySQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import content, event, say
from wxbot.qa.models import KbAliasVote

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


def create(client, **body):  # type: ignore[no-untyped-def]
    resp = client.post("/admin/api/knowledge", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def offer(bot, openid: str, text: str) -> str:  # type: ignore[no-untyped-def]
    reply = content(say(bot, openid, text))
    assert reply.startswith("我不太确定"), reply
    return reply


def test_two_users_picking_the_same_entry_teach_their_wording(app, client, bot) -> None:  # type: ignore[no-untyped-def]
    refund = create(client, question="怎么申请退款", answer="在订单页点「申请退款」。")
    create(client, question="怎么申请发票", answer="在订单页点「开发票」。")
    kb = bot.deps.kb
    kb.confident, kb.sure, kb.suggest = 99.0, 99.0, 0.0  # every match is offered
    asked = "钱能退回来吗申请"
    reply = offer(bot, "o_a", asked)
    number = "1" if "1. 怎么申请退款" in reply else "2"
    assert content(say(bot, "o_a", number)) == "在订单页点「申请退款」。"
    offer(bot, "o_a", asked)  # the same user again: still one vote
    say(bot, "o_a", number)
    learned = client.get("/admin/api/learned", headers=AUTH).get_json()
    assert learned["total"] == 0
    offer(bot, "o_b", asked + "？")  # a second user, same normalised wording
    say(bot, "o_b", number)
    learned = client.get("/admin/api/learned", headers=AUTH).get_json()
    assert learned["total"] == 1
    item = learned["items"][0]
    assert (item["entry_id"], item["question"], item["users"]) == (refund["id"], asked + "？", 2)
    kb.confident, kb.sure = 0.7, 1.2
    assert content(say(bot, "o_c", asked)) == "在订单页点「申请退款」。"  # learned: answered
    # an admin undoes it: gone from the entry, and its votes with it
    resp = client.delete(f"/admin/api/learned/{item['id']}", headers=AUTH)
    assert resp.status_code == 200
    entry = client.get(f"/admin/api/knowledge/{refund['id']}", headers=AUTH).get_json()
    assert entry["questions"] == ["怎么申请退款"]
    assert client.delete(f"/admin/api/learned/{item['id']}", headers=AUTH).status_code == 404


def test_min_users_setting_and_unsubscribe_forgets_votes(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(admin_token=TOKEN, alias_min_users=1)
    client, bot = app.test_client(), app.extensions["wxbot.bot"]
    create(client, question="怎么申请退款", answer="退款。")
    create(client, question="怎么申请发票", answer="发票。")
    kb = bot.deps.kb
    kb.confident, kb.sure, kb.suggest = 99.0, 99.0, 0.0
    reply = offer(bot, "o_a", "我要申请")
    say(bot, "o_a", "1")
    assert client.get("/admin/api/learned", headers=AUTH).get_json()["total"] == 1
    assert "1." in reply
    offer(bot, "o_b", "申请一下")
    say(bot, "o_b", "2")
    bot.handle(event("o_b", "unsubscribe"))
    with app.extensions["wxbot.engine"].connect() as conn:
        owners = conn.execute(select(KbAliasVote.openid)).scalars().all()
    assert "o_b" not in owners and "o_a" in owners


def test_unanswered_grouped_then_attached_or_answered(app, client, bot) -> None:  # type: ignore[no-untyped-def]
    hours = create(client, question="营业时间是几点", answer="9:00-17:00。")
    for text in ("周末上班吗", "周末上班吗", "周六开门吗", "能开电子发票吗"):
        say(bot, "o_u", text)
    grouped = client.get("/admin/api/unanswered?group=1", headers=AUTH).get_json()
    leaders = {g["question"]: g for g in grouped["items"]}
    assert leaders["周末上班吗"]["total"] == 3  # 周六 ~ 周末, 开门 ~ 上班 (starter synonyms)
    assert [s["question"] for s in leaders["周末上班吗"]["similar"]] == ["周六开门吗"]
    flat = client.get("/admin/api/unanswered", headers=AUTH).get_json()
    assert flat["total"] == 3

    group = leaders["周末上班吗"]
    url = f"/admin/api/unanswered/{group['id']}/attach"
    body = {"entry_id": hours["id"], "similar": [s["id"] for s in group["similar"]]}
    resp = client.post(url, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["questions"] == ["营业时间是几点", "周末上班吗", "周六开门吗"]
    assert content(say(bot, "o_v", "周六开门吗")) == "9:00-17:00。"

    left = client.get("/admin/api/unanswered", headers=AUTH).get_json()["items"]
    assert [i["question"] for i in left] == ["能开电子发票吗"]
    url = f"/admin/api/unanswered/{left[0]['id']}/answer"
    resp = client.post(url, json={"answer": "可以，下单时选择电子发票。"}, headers=AUTH)
    assert resp.status_code == 201
    assert content(say(bot, "o_v", "能开电子发票吗")) == "可以，下单时选择电子发票。"
    assert client.get("/admin/api/unanswered", headers=AUTH).get_json()["total"] == 0


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/admin/api/unanswered/999/attach", {"entry_id": 1}, 404),
        ("/admin/api/unanswered/{id}/attach", {"entry_id": 999}, 404),
        ("/admin/api/unanswered/{id}/attach", {"entry_id": "1"}, 422),
        ("/admin/api/unanswered/{id}/attach", {"entry": 1}, 422),
        ("/admin/api/unanswered/{id}/attach", {"entry_id": 1, "similar": "x"}, 422),
        ("/admin/api/unanswered/{id}/answer", {}, 422),
        ("/admin/api/unanswered/{id}/answer", {"answer": " "}, 422),
    ],
)
def test_attach_and_answer_errors(client, bot, path, body, status) -> None:  # type: ignore[no-untyped-def]
    create(client, question="营业时间是几点", answer="9:00-17:00。")
    say(bot, "o_u", "量子力学是什么")
    unanswered = client.get("/admin/api/unanswered", headers=AUTH).get_json()["items"][0]
    resp = client.post(path.format(id=unanswered["id"]), json=body, headers=AUTH)
    assert resp.status_code == status and resp.get_json()["error"]
    assert client.get("/admin/api/unanswered", headers=AUTH).get_json()["total"] == 1


def test_similar_questions_and_language_through_the_api(client, bot) -> None:  # type: ignore[no-untyped-def]
    entry = create(
        client, question="营业时间", similar=["几点开门"], answer="9 点开门。", language="zh"
    )
    assert entry["questions"] == ["营业时间", "几点开门"] and entry["language"] == "zh"
    url = f"/admin/api/knowledge/{entry['id']}/questions"
    resp = client.post(url, json={"questions": ["什么时候上班", "几点开门"]}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["added"] == ["什么时候上班"]
    assert content(say(bot, "o_u", "什么时候上班")) == "9 点开门。"
    resp = client.delete(url, query_string={"question": "几点开门"}, headers=AUTH)
    assert resp.get_json()["questions"] == ["营业时间", "什么时候上班"]
    assert client.delete(url, query_string={"question": "没有"}, headers=AUTH).status_code == 404
    resp = client.put(f"/admin/api/knowledge/{entry['id']}", json={"language": "xx"}, headers=AUTH)
    assert resp.status_code == 422 and "zh, en, th, tl, ja" in resp.get_json()["error"]
    resp = client.put(f"/admin/api/knowledge/{entry['id']}", json={"language": None}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["language"] is None
    other = create(client, question="别的问题", answer="别的。")
    resp = client.post(
        f"/admin/api/knowledge/{other['id']}/questions", json={"question": "营业时间"}, headers=AUTH
    )
    assert resp.status_code == 409  # one question belongs to one entry
