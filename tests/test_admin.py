"""Admin HTTP API: auth errors, knowledge CRUD with search and paging, unanswered, sessions."""

from __future__ import annotations

import pytest

from tests.helpers import say

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


def create(client, **body):  # type: ignore[no-untyped-def]
    return client.post("/admin/api/knowledge", json=body, headers=AUTH)


def test_disabled_without_a_token(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app().test_client()
    resp = client.get("/admin/api/knowledge", headers=AUTH)
    assert resp.status_code == 404 and "WXBOT_ADMIN_TOKEN" in resp.get_json()["error"]


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
def test_auth_errors(client, headers, status) -> None:  # type: ignore[no-untyped-def]
    for method, path in [("get", "/admin/api/knowledge"), ("delete", "/admin/api/knowledge/1")]:
        resp = getattr(client, method)(path, headers=headers)
        assert resp.status_code == status
        assert resp.is_json and resp.get_json()["error"]
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_create_get_update_delete(client, bot) -> None:  # type: ignore[no-untyped-def]
    resp = create(client, questions=["会员怎么退", "会员退款"], answer="7 天内可退。")
    assert resp.status_code == 201
    entry = resp.get_json()
    assert entry["questions"] == ["会员怎么退", "会员退款"] and entry["source"] == "api"
    assert resp.headers["Location"].endswith(f"/admin/api/knowledge/{entry['id']}")
    assert say(bot, "o_u", "会员退款").content == "7 天内可退。"

    url = f"/admin/api/knowledge/{entry['id']}"
    assert client.get(url, headers=AUTH).get_json()["answer"] == "7 天内可退。"
    resp = client.put(url, json={"answer": "15 天内可退。"}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["questions"] == ["会员怎么退", "会员退款"]
    assert say(bot, "o_u", "会员退款").content == "15 天内可退。"  # this process, next message

    resp = client.put(url, json={"question": "会员费能退吗"}, headers=AUTH)
    assert resp.get_json()["questions"] == ["会员费能退吗"]
    assert client.delete(url, headers=AUTH).get_json() == {"deleted": entry["id"]}
    assert client.get(url, headers=AUTH).status_code == 404
    assert not say(bot, "o_u", "会员费能退吗").content.startswith("15 天")


def test_list_with_search_and_paging(client) -> None:  # type: ignore[no-untyped-def]
    for i in range(25):
        create(client, question=f"第{i}个问题", answer=f"答案{i}")
    create(client, question="怎么找到发票", answer="在订单页。")
    body = client.get("/admin/api/knowledge?per_page=10&page=3", headers=AUTH).get_json()
    assert body["total"] == 26 and len(body["items"]) == 6 and body["page"] == 3
    assert body["items"][-1]["answer"] == "答案0"  # newest first
    found = client.get("/admin/api/knowledge?q=发票", headers=AUTH).get_json()
    assert [e["answer"] for e in found["items"]] == ["在订单页。"]
    found = client.get("/admin/api/knowledge?q=答案1", headers=AUTH).get_json()
    assert found["total"] == 11  # 答案1, 答案10..答案19
    assert client.get("/admin/api/knowledge?q=100%", headers=AUTH).get_json()["total"] == 0


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"answer": "x"}, 422, "questions"),
        ({"question": "q"}, 422, "answer"),
        ({"question": "", "answer": "x"}, 422, "empty"),
        ({"question": "？！", "answer": "x"}, 422, "no letters"),
        ({"question": "q", "answer": "   "}, 422, "empty"),
        ({"question": "q" * 501, "answer": "x"}, 422, "longer"),
        ({"questions": [], "answer": "x"}, 422, "at least one"),
        ({"questions": [1], "answer": "x"}, 422, "string"),
        ({"question": "q", "questions": ["q"], "answer": "x"}, 422, "not both"),
        ({"question": "q", "answer": "x", "extra": 1}, 422, "unknown field"),
        ({"question": "q", "answer": 5}, 422, "string"),
    ],
)
def test_invalid_entries(client, body, status, words) -> None:  # type: ignore[no-untyped-def]
    resp = create(client, **body)
    assert resp.status_code == status
    assert words in resp.get_json()["error"]


def test_not_json_and_not_an_object(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/admin/api/knowledge", data="q=1", headers=AUTH)
    assert resp.status_code == 400 and "JSON" in resp.get_json()["error"]
    resp = client.post("/admin/api/knowledge", json=["a"], headers=AUTH)
    assert resp.status_code == 422


def test_a_question_belongs_to_one_entry(client) -> None:  # type: ignore[no-untyped-def]
    first = create(client, question="怎么退款", answer="a").get_json()
    resp = create(client, questions=["新问题", "怎么退款？"], answer="b")
    assert resp.status_code == 409 and str(first["id"]) in resp.get_json()["error"]
    other = create(client, question="别的问题", answer="c").get_json()
    resp = client.put(
        f"/admin/api/knowledge/{other['id']}", json={"questions": ["怎么退款"]}, headers=AUTH
    )
    assert resp.status_code == 409
    assert client.get("/admin/api/knowledge", headers=AUTH).get_json()["total"] == 2


def test_update_errors(client) -> None:  # type: ignore[no-untyped-def]
    entry = create(client, question="q1", answer="a").get_json()
    url = f"/admin/api/knowledge/{entry['id']}"
    assert client.put(url, json={}, headers=AUTH).status_code == 422
    assert client.put(url, json={"answer": ""}, headers=AUTH).status_code == 422
    assert (
        client.put("/admin/api/knowledge/999", json={"answer": "x"}, headers=AUTH).status_code
        == 404
    )
    assert client.delete("/admin/api/knowledge/999", headers=AUTH).status_code == 404
    assert client.get(url, headers=AUTH).get_json()["answer"] == "a"


def test_paging_errors_and_unknown_routes(client) -> None:  # type: ignore[no-untyped-def]
    for query in ("page=0", "per_page=1000", "page=x"):
        resp = client.get(f"/admin/api/knowledge?{query}", headers=AUTH)
        assert resp.status_code == 422 and resp.get_json()["error"]
    resp = client.get("/admin/api/nothing-here", headers=AUTH)
    assert resp.status_code == 404 and resp.is_json
    resp = client.patch("/admin/api/knowledge/1", headers=AUTH)
    assert resp.status_code == 405 and resp.is_json


def test_unanswered_questions_most_asked_first(client, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "火星上有信号吗")
    for _ in range(3):
        say(bot, "o_u", "量子计算机能买吗？")
        clock.advance(5)
    body = client.get("/admin/api/unanswered", headers=AUTH).get_json()
    assert body["total"] == 2
    top = body["items"][0]
    assert (top["question"], top["count"]) == ("量子计算机能买吗？", 3)
    assert top["last_asked_at"] == top["first_asked_at"] + 10
    # teaching it takes it off the list
    create(client, question="量子计算机能买吗", answer="还不能。")
    body = client.get("/admin/api/unanswered", headers=AUTH).get_json()
    assert [i["question"] for i in body["items"]] == ["火星上有信号吗"]


def test_sessions_and_stats(client, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_a", "你好")
    say(bot, "o_b", "天气")
    body = client.get("/admin/api/sessions", headers=AUTH).get_json()
    assert body["total"] == 2 and {s["openid"] for s in body["items"]} == {"o_a", "o_b"}
    one = client.get("/admin/api/sessions/o_b", headers=AUTH).get_json()
    assert one["state"] == "WAIT_WEATHER_CITY" and one["history"]
    assert client.delete("/admin/api/sessions/o_b", headers=AUTH).status_code == 200
    assert client.get("/admin/api/sessions/o_b", headers=AUTH).status_code == 404
    assert client.delete("/admin/api/sessions/o_b", headers=AUTH).status_code == 404
    create(client, question="q", answer="a")
    stats = client.get("/admin/api/stats", headers=AUTH).get_json()
    assert stats["sessions"]["live"] == 1
    assert stats["knowledge"]["entries"] == 1 and stats["knowledge"]["unanswered"] == 1
