"""The memory API under the admin token: users with last activity, a user's history, clearing
it (the user stays), setting the window, and bad input (SQLite and MySQL). No LLM needed:
the memory is the conversation history whatever answers it."""

from __future__ import annotations

import pytest

from tests.helpers import say

TOKEN = "memory-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN, history_rounds=4)


def history(client, openid: str):  # type: ignore[no-untyped-def]
    return client.get(f"/admin/api/sessions/{openid}/history", headers=AUTH)


def test_history_shows_messages_rounds_and_window(client, bot) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        say(bot, "o_u", f"问题{i}")
    body = history(client, "o_u").get_json()
    assert body["total_messages"] == 8 and body["total_rounds"] == 4
    assert (body["history_rounds"], body["history_rounds_source"]) == (4, "default")
    assert [m["content"] for m in body["messages"] if m["role"] == "user"] == [
        f"问题{i}" for i in range(2, 6)
    ]
    assert {m["role"] for m in body["messages"]} == {"user", "bot"}
    assert history(client, "o_nobody").status_code == 404


def test_clearing_keeps_the_user_and_their_dialogue(client, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "你好")
    say(bot, "o_u", "天气")  # now waiting for a city
    resp = client.delete("/admin/api/sessions/o_u/history", headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["cleared_messages"] == 4
    assert history(client, "o_u").get_json()["total_messages"] == 0
    session = client.get("/admin/api/sessions/o_u", headers=AUTH).get_json()
    assert session["state"] == "WAIT_WEATHER_CITY" and session["history"] == []
    assert client.delete("/admin/api/sessions/o_x/history", headers=AUTH).status_code == 404


def test_setting_the_window_trims_now_and_keeps_it_exact(client, bot) -> None:  # type: ignore[no-untyped-def]
    for i in range(4):
        say(bot, "o_u", f"问题{i}")
    resp = client.put("/admin/api/sessions/o_u", json={"history_rounds": 2}, headers=AUTH)
    assert resp.status_code == 200
    assert resp.get_json() == {
        "openid": "o_u",
        "history_rounds": 2,
        "history_rounds_source": "user",
        "total_messages": 4,
    }
    say(bot, "o_u", "问题4")
    users = [m["content"] for m in history(client, "o_u").get_json()["messages"]]
    assert users[::2] == ["问题3", "问题4"]
    client.put("/admin/api/sessions/o_u", json={"history_rounds": 10}, headers=AUTH)
    for i in range(5, 12):
        say(bot, "o_u", f"问题{i}")
    assert history(client, "o_u").get_json()["total_rounds"] == 9  # 3 + 6: growing back to 10
    say(bot, "o_u", "问题12")
    say(bot, "o_u", "问题13")
    assert history(client, "o_u").get_json()["total_rounds"] == 10
    resp = client.put("/admin/api/sessions/o_u", json={"history_rounds": None}, headers=AUTH)
    assert resp.get_json()["history_rounds"] == 4 and resp.get_json()["total_messages"] == 8


@pytest.mark.parametrize(
    "body, status",
    [
        ({"history_rounds": 0}, 422),
        ({"history_rounds": 51}, 422),
        ({"history_rounds": "5"}, 422),
        ({"history_rounds": 5.5}, 422),
        ({"history_rounds": True}, 422),
        ({}, 422),
        ({"history_rounds": 3, "rounds": 3}, 422),
        ([3], 422),
    ],
)
def test_bad_window_requests_say_why(client, bot, body, status) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "你好")
    resp = client.put("/admin/api/sessions/o_u", json=body, headers=AUTH)
    assert resp.status_code == status and resp.get_json()["error"]


def test_window_errors_without_json_or_user(client, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "你好")
    resp = client.put("/admin/api/sessions/o_u", data="rounds=3", headers=AUTH)
    assert resp.status_code == 400
    resp = client.put("/admin/api/sessions/o_nobody", json={"history_rounds": 3}, headers=AUTH)
    assert resp.status_code == 404


def test_users_are_listed_with_last_activity_even_after_eviction(client, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_old", "你好")
    client.put("/admin/api/sessions/o_old", json={"history_rounds": 2}, headers=AUTH)
    clock.advance(700)
    assert bot.clean_up()[0] == 1  # o_old's context is evicted; their memory stays
    say(bot, "o_new", "你好")
    body = client.get("/admin/api/sessions?per_page=1", headers=AUTH).get_json()
    assert body["total"] == 2 and [u["openid"] for u in body["items"]] == ["o_new"]
    second = client.get("/admin/api/sessions?per_page=1&page=2", headers=AUTH).get_json()
    old = second["items"][0]
    assert (old["openid"], old["live"], old["state"]) == ("o_old", False, None)
    assert body["items"][0]["last_active"] == old["last_active"] + 700
    assert history(client, "o_old").get_json()["total_rounds"] == 1
    say(bot, "o_old", "我回来了")  # the new context starts from the memory
    assert history(client, "o_old").get_json()["total_rounds"] == 2
    stats = client.get("/admin/api/stats", headers=AUTH).get_json()
    assert stats["sessions"]["users"] == 2 and stats["llm"]["mode"] == "off"


def test_deleting_a_user_known_only_by_memory(client, bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_old", "你好")
    client.put("/admin/api/sessions/o_old", json={"history_rounds": 2}, headers=AUTH)
    clock.advance(700)
    bot.clean_up()
    assert client.get("/admin/api/sessions/o_old", headers=AUTH).status_code == 200
    assert client.delete("/admin/api/sessions/o_old", headers=AUTH).status_code == 200
    assert client.get("/admin/api/sessions/o_old", headers=AUTH).status_code == 404
    assert client.delete("/admin/api/sessions/o_old", headers=AUTH).status_code == 404
    say(bot, "o_old", "我回来了")  # a blank memory now
    assert history(client, "o_old").get_json()["total_rounds"] == 1


def test_stored_histories_older_than_the_retention_are_emptied(client, bot, clock) -> None:  # type: ignore[no-untyped-def]
    """WXBOT_MEMORY_DAYS (default 90): a stored history not written for that long is
    emptied by the clean-up; the user, their window and usage stay, recent ones are kept."""
    say(bot, "o_old", "你好")
    client.put("/admin/api/sessions/o_old", json={"history_rounds": 2}, headers=AUTH)
    clock.advance(89 * 86_400)
    say(bot, "o_recent", "你好")
    client.put("/admin/api/sessions/o_recent", json={"history_rounds": 3}, headers=AUTH)
    bot.clean_up()  # both contexts evicted after a while: the stored copies remain
    clock.advance(2 * 86_400)
    bot.clean_up()
    assert bot.forget_old_histories(batch=1) == 1
    old = history(client, "o_old").get_json()
    assert (old["total_rounds"], old["history_rounds"]) == (0, 2)
    assert history(client, "o_recent").get_json()["total_rounds"] == 1
    assert bot.forget_old_histories() == 0  # nothing left to empty


def test_a_history_past_the_retention_is_not_carried_into_a_new_context(client, bot, clock) -> None:  # type: ignore[no-untyped-def]
    """WXBOT_MEMORY_DAYS holds even before a clean-up has emptied the stored copy: a user
    back after 91 days starts from nothing, one back after 89 from their history."""
    say(bot, "o_gone", "你好")
    client.put("/admin/api/sessions/o_gone", json={"history_rounds": 2}, headers=AUTH)
    clock.advance(89 * 86_400)
    say(bot, "o_back", "你好")
    client.put("/admin/api/sessions/o_back", json={"history_rounds": 2}, headers=AUTH)
    clock.advance(2 * 86_400)
    bot.clean_up()  # the contexts go; the stored copies stay (no forget_old_histories run)
    say(bot, "o_gone", "我回来了")
    say(bot, "o_back", "我回来了")
    assert history(client, "o_gone").get_json()["total_rounds"] == 1
    assert history(client, "o_back").get_json()["total_rounds"] == 2
