"""Several admins at once through the JSON API: ETag on every entry and synonym group, and
If-Match on PUT and DELETE (412 when the stored one changed; no If-Match: last write wins,
as before)."""

from __future__ import annotations

import pytest

from tests.test_console_synonyms import learn
from wxbot.qa import learning

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


def with_match(etag: str) -> dict[str, str]:
    return {**AUTH, "If-Match": etag}


def test_entries_carry_an_etag_that_changes_with_them(client) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/admin/api/knowledge", json={"question": "会员怎么退", "answer": "7 天内。"}, headers=AUTH
    )
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert client.get(url, headers=AUTH).headers["ETag"] == etag
    added = client.post(url + "/questions", json={"questions": ["会员退款"]}, headers=AUTH)
    assert added.headers["ETag"] not in ("", etag)
    assert client.get(url, headers=AUTH).headers["ETag"] == added.headers["ETag"]
    removed = client.delete(url + "/questions?question=会员退款", headers=AUTH)
    assert removed.headers["ETag"] == etag  # the same content, the same tag
    put = client.put(url, json={"language": "zh"}, headers=AUTH)
    assert put.headers["ETag"] not in ("", etag)


def test_if_match_on_put(client) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/admin/api/knowledge", json={"question": "会员怎么退", "answer": "7 天内。"}, headers=AUTH
    )
    url, seen = created.headers["Location"], created.headers["ETag"]
    # another admin adds a question meanwhile
    client.post(url + "/questions", json={"questions": ["会员退款"]}, headers=AUTH)
    stale = client.put(url, json={"questions": ["会员怎么退"]}, headers=with_match(seen))
    assert stale.status_code == 412 and "changed" in stale.get_json()["error"]
    assert client.get(url, headers=AUTH).get_json()["questions"] == ["会员怎么退", "会员退款"]
    weak = client.put(url, json={"answer": "x"}, headers=with_match("W/" + seen))
    assert weak.status_code == 412  # If-Match compares strongly: a weak tag never matches

    current = client.get(url, headers=AUTH).headers["ETag"]
    ok = client.put(url, json={"answer": "15 天内。"}, headers=with_match(f'"nope", {current}'))
    assert ok.status_code == 200 and ok.get_json()["answer"] == "15 天内。"
    again = client.put(url, json={"answer": "15 天内。"}, headers=with_match(current))
    assert again.status_code == 200  # a retry of a PUT that went through: nothing to lose
    star = client.put(url, json={"answer": "30 天内。"}, headers=with_match("*"))
    assert star.status_code == 200
    plain = client.put(url, json={"answer": "60 天内。"}, headers=AUTH)  # last write wins
    assert plain.status_code == 200 and plain.get_json()["answer"] == "60 天内。"
    missing = client.put(
        "/admin/api/knowledge/424242", json={"answer": "x"}, headers=with_match(current)
    )
    assert missing.status_code == 404


def test_if_match_on_delete(client) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/admin/api/knowledge", json={"question": "会员怎么退", "answer": "7 天内。"}, headers=AUTH
    )
    url, seen = created.headers["Location"], created.headers["ETag"]
    client.put(url, json={"answer": "15 天内。"}, headers=AUTH)
    assert client.delete(url, headers=with_match(seen)).status_code == 412
    assert client.get(url, headers=AUTH).status_code == 200
    current = client.get(url, headers=AUTH).headers["ETag"]
    assert client.delete(url, headers=with_match(current)).status_code == 200
    assert client.delete(url, headers=with_match(current)).status_code == 404


def test_a_put_keeps_learned_wordings_learned(app, client) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/admin/api/knowledge", json={"question": "怎么开发票", "answer": "订单页。"}, headers=AUTH
    )
    eid = created.get_json()["id"]
    learn(app, "发票怎么弄", eid)
    body = {"questions": ["发票怎么弄", "怎么开发票"], "answer": "订单页 › 发票。"}
    assert client.put(f"/admin/api/knowledge/{eid}", json=body, headers=AUTH).status_code == 200
    with app.extensions["wxbot.engine"].connect() as conn:
        assert [i["question"] for i in learning.list_learned(conn)[1]] == ["发票怎么弄"]
    listed = client.get("/admin/api/learned", headers=AUTH).get_json()["items"]
    assert [i["question"] for i in listed] == ["发票怎么弄"]


def test_synonym_groups_carry_an_etag_and_honour_if_match(client) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/admin/api/synonyms", json={"words": ["收据", "小票"]}, headers=AUTH)
    url, seen = created.headers["Location"], created.headers["ETag"]
    assert client.get(url, headers=AUTH).headers["ETag"] == seen
    changed = client.put(url, json={"words": ["收据", "小票", "凭条"]}, headers=with_match(seen))
    assert changed.status_code == 200 and changed.headers["ETag"] != seen
    stale = client.put(url, json={"words": ["收据", "发票联"]}, headers=with_match(seen))
    assert stale.status_code == 412
    assert client.get(url, headers=AUTH).get_json()["words"] == ["收据", "小票", "凭条"]
    assert client.delete(url, headers=with_match(seen)).status_code == 412
    current = changed.headers["ETag"]
    assert client.delete(url, headers=with_match(current)).status_code == 200
