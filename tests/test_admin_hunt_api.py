"""Admin API bugs found by a careless client's hunt: a body of any size was read and parsed
whole (a 300 MB file took 1.3 GB of a worker's memory) only to be refused as too long."""

from __future__ import annotations

import json

import pytest

from wxbot.admin.api import MAX_BODY_BYTES

TOKEN = "hunt-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/admin/api"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/knowledge"),
        ("put", "/knowledge/1"),
        ("post", "/knowledge/1/questions"),
        ("post", "/synonyms"),
        ("post", "/unanswered/1/answer"),
        ("post", "/llm/answers/1/promote"),
        ("put", "/sessions/o_u"),
    ],
)
def test_a_body_over_the_limit_is_a_413_before_it_is_read(client, method, path) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"question": "q", "answer": "a" * MAX_BODY_BYTES}).encode()
    resp = getattr(client, method)(
        API + path, data=body, content_type="application/json", headers=AUTH
    )
    assert resp.status_code == 413 and resp.is_json
    assert resp.get_json() == {
        "error": f"the body is larger than {MAX_BODY_BYTES} bytes",
        "status": 413,
    }
    assert client.get(f"{API}/knowledge", headers=AUTH).get_json()["total"] == 0
    # without the token the body is not read either, and the answer says why
    resp = getattr(client, method)(API + path, data=body, content_type="application/json")
    assert resp.status_code == 401


def test_the_largest_valid_entry_still_fits(client) -> None:  # type: ignore[no-untyped-def]
    """50 questions of 500 characters and a 10,000-character answer, every character an
    emoji sent as a \\uXXXX\\uXXXX escape pair (ensure_ascii), fit under the limit."""
    questions = [f"{i:03d}" + "🙂" * 497 for i in range(50)]
    body = json.dumps({"questions": questions, "answer": "🙂" * 10_000}, indent=2)
    assert len(body) < MAX_BODY_BYTES
    resp = client.post(f"{API}/knowledge", data=body, content_type="application/json", headers=AUTH)
    assert resp.status_code == 201, resp.get_json()
    assert len(resp.get_json()["questions"]) == 50


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"answer": None}, "the answer must be a string"),
        ({"questions": None, "answer": "新答案"}, '"questions" must be a list of strings'),
        ({"question": None, "answer": "新答案"}, '"questions" must be a list of strings'),
    ],
)
def test_a_put_with_a_null_answer_or_questions_is_refused_not_ignored(client, body, reason) -> None:  # type: ignore[no-untyped-def]
    """POST refuses {"answer": null}; PUT took null for "leave it as it is" and answered 200
    with nothing changed (or changed the answer and ignored the null questions)."""
    created = client.post(
        f"{API}/knowledge",
        json={"question": "怎么退款", "similar": ["如何退款"], "answer": "在订单页"},
        headers=AUTH,
    ).get_json()
    resp = client.put(f"{API}/knowledge/{created['id']}", json=body, headers=AUTH)
    assert resp.status_code == 422 and resp.get_json()["error"].startswith(reason)
    stored = client.get(f"{API}/knowledge/{created['id']}", headers=AUTH).get_json()
    assert stored["answer"] == "在订单页" and stored["questions"] == ["怎么退款", "如何退款"]
    # "language": null still clears the language
    resp = client.put(f"{API}/knowledge/{created['id']}", json={"language": None}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["language"] is None
