"""Review findings on the admin API and the knowledge write paths: bad input gets a clear
4xx (or a CLI message), never a 500 or a traceback, and nothing stored is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import content, say
from tests.test_qa_learning import AUTH, TOKEN, create

HUGE = 10**25  # a whole number no database column holds


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


def entry_count(client) -> int:  # type: ignore[no-untyped-def]
    return client.get("/admin/api/knowledge", headers=AUTH).get_json()["total"]


# -- JSONL backups with line separators inside answers ---------------------------------------


def test_jsonl_export_with_unicode_line_separators_imports_back(app, client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """U+2028 / U+0085 are legal inside a JSON string (json.dumps leaves them raw): an export
    must read back, not fail on every such entry (a backup that cannot be restored)."""
    from wxbot.qa.cli import kb

    create(client, question="地址在哪", answer="北京市\u2028朝阳区", language="zh")
    create(client, question="电话多少", answer="010-1234\x855678")
    create(client, question="营业时间", answer="9 点\u2029到 18 点")
    create(client, question="几点开门", similar=["何时开门"], answer="九点\n开门")
    runner = app.test_cli_runner()
    for fmt in ("jsonl", "txt", "csv"):
        out = str(tmp_path / f"out.{fmt}")
        assert runner.invoke(kb, ["export", out]).exit_code == 0
        again = runner.invoke(kb, ["import", out])
        assert again.exit_code == 0, (fmt, again.output)
        assert "added 0, updated 0, unchanged 4, rejected 0" in again.output, (fmt, again.output)


def test_jsonl_records_split_only_at_real_line_breaks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.formats import parse_file

    path = tmp_path / "a.jsonl"
    rows = [{"question": "问题一", "answer": "甲\u2028乙"}, {"question": "问题二", "answer": "丙"}]
    path.write_bytes(
        b"\r\n".join(json.dumps(r, ensure_ascii=False).encode() for r in rows) + b"\r\n"
    )
    parsed = parse_file(str(path))
    assert parsed.errors == []
    assert [(r.answer, r.line) for r in parsed.records] == [("甲\u2028乙", 1), ("丙", 2)]


# -- numbers no column holds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", f"/admin/api/knowledge/{HUGE}"),
        ("put", f"/admin/api/knowledge/{HUGE}"),
        ("delete", f"/admin/api/knowledge/{HUGE}"),
        ("post", f"/admin/api/knowledge/{HUGE}/questions"),
        ("delete", f"/admin/api/knowledge/{HUGE}/questions?question=x"),
        ("delete", f"/admin/api/learned/{HUGE}"),
        ("post", f"/admin/api/unanswered/{HUGE}/attach"),
        ("post", f"/admin/api/unanswered/{HUGE}/answer"),
        ("post", f"/admin/api/llm/answers/{HUGE}/promote"),
        ("put", f"/admin/api/synonyms/{HUGE}"),
    ],
)
def test_ids_too_big_for_the_database_are_404(client, method, path) -> None:  # type: ignore[no-untyped-def]
    body = {"answer": "x", "questions": ["x"], "entry_id": 1, "words": ["丢了", "遗失"]}
    if "promote" in path:
        body = {}
    elif "attach" in path:
        body = {"entry_id": 1}
    elif "unanswered" in path:
        body = {"answer": "x"}
    elif "/questions" in path:
        body = {"questions": ["x"]}
    elif "synonyms" in path:
        body = {"words": ["丢了", "遗失"]}
    elif method == "put":
        body = {"answer": "x"}
    resp = getattr(client, method)(path, json=body, headers=AUTH)
    assert resp.status_code == 404, resp.get_json()
    assert resp.get_json()["error"]


def test_a_huge_id_still_needs_the_token(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"/admin/api/knowledge/{HUGE}").status_code == 401


@pytest.mark.parametrize(
    "path", ["knowledge", "learned", "unanswered", "sessions", "llm/answers", "synonyms"]
)
def test_a_page_past_any_number_the_database_holds_is_422(client, path) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(f"/admin/api/{path}?page={HUGE}", headers=AUTH)
    assert resp.status_code == 422, resp.get_json()
    assert "page" in resp.get_json()["error"]
    far = client.get(f"/admin/api/{path}?page=1000000&per_page=100", headers=AUTH)
    assert far.status_code == 200 and far.get_json()["items"] == []


def test_ids_in_the_body_too_big_for_the_database_are_refused(client, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "量子力学是什么")
    item = client.get("/admin/api/unanswered", headers=AUTH).get_json()["items"][0]
    url = f"/admin/api/unanswered/{item['id']}"
    resp = client.post(f"{url}/attach", json={"entry_id": HUGE}, headers=AUTH)
    assert resp.status_code in (404, 422), resp.get_json()
    entry = create(client, question="营业时间", answer="9 点。")
    body = {"entry_id": entry["id"], "similar": [HUGE]}
    resp = client.post(f"{url}/attach", json=body, headers=AUTH)
    assert resp.status_code in (404, 422), resp.get_json()
    resp = client.post(f"{url}/answer", json={"answer": "x", "similar": [HUGE]}, headers=AUTH)
    assert resp.status_code in (404, 422), resp.get_json()
    assert client.get("/admin/api/unanswered", headers=AUTH).get_json()["total"] == 1


# -- text that is not Unicode ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"question": "坏\ud800问题", "answer": "好答案"},
        {"question": "好问题", "answer": "坏\udfff答案"},
        {"question": "好问题", "similar": ["\ud83d"], "answer": "好答案"},
    ],
)
def test_lone_surrogates_in_json_are_422_not_500(client, body) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as a \\uXXXX escape
    resp = client.post(
        "/admin/api/knowledge", data=raw, content_type="application/json", headers=AUTH
    )
    assert resp.status_code == 422, resp.get_json()
    assert "Unicode" in resp.get_json()["error"]
    assert entry_count(client) == 0


def test_lone_surrogate_in_a_jsonl_file_is_a_row_error_not_a_traceback(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"question": "好问题", "answer": "好答案"}\n{"question": "\\ud800坏", "answer": "x"}\n',
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(kb, ["import", str(path)])
    assert result.exit_code == 1 and result.exception is not None  # SystemExit(1), no traceback
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"{path}:2:" in result.output and "nothing written" in result.output
    result = app.test_cli_runner().invoke(kb, ["import", "--skip-bad", str(path)])
    assert result.exit_code == 0 and "added 1" in result.output, result.output


# -- JSON nested too deeply --------------------------------------------------------------------


def test_deeply_nested_json_body_is_400_not_500(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/admin/api/knowledge",
        data="[" * 100_000,
        content_type="application/json",
        headers=AUTH,
    )
    assert resp.status_code == 400, resp.get_data(as_text=True)[:200]
    assert resp.get_json()["error"]


def test_deeply_nested_jsonl_row_is_a_row_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa.formats import parse_file

    path = tmp_path / "deep.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    parsed = parse_file(str(path))
    assert len(parsed.records) == 1
    assert len(parsed.errors) == 1 and parsed.errors[0].startswith(f"{path}:2: invalid JSON")


# -- learned wordings: an admin's removal sticks -------------------------------------------------


def _learn(client, bot) -> tuple[dict, str, str]:  # type: ignore[no-untyped-def, type-arg]
    refund = create(client, question="怎么申请退款", answer="在订单页点「申请退款」。")
    create(client, question="怎么申请发票", answer="在订单页点「开发票」。")
    kb = bot.deps.kb
    kb.confident, kb.sure, kb.suggest = 99.0, 99.0, 0.0  # every match is offered
    asked = "钱能退回来吗申请"
    number = ""
    for openid in ("o_a", "o_b"):
        reply = content(say(bot, openid, asked))
        number = "1" if "1. 怎么申请退款" in reply else "2"
        say(bot, openid, number)
    learned = client.get("/admin/api/learned", headers=AUTH).get_json()
    assert learned["total"] == 1
    return refund, asked, number


@pytest.mark.parametrize("how", ["remove", "replace"])
def test_a_learned_wording_an_admin_removed_is_not_relearned_from_old_votes(
    client,
    bot,
    how,  # type: ignore[no-untyped-def]
) -> None:
    refund, asked, number = _learn(client, bot)
    url = f"/admin/api/knowledge/{refund['id']}"
    if how == "remove":
        resp = client.delete(f"{url}/questions", query_string={"question": asked}, headers=AUTH)
    else:
        resp = client.put(url, json={"questions": ["怎么申请退款"]}, headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["questions"] == ["怎么申请退款"]
    # one of the same two users picks it once more: that is not a second user
    reply = content(say(bot, "o_a", asked))
    assert reply.startswith("我不太确定"), reply
    say(bot, "o_a", "1" if "1. 怎么申请退款" in reply else "2")
    entry = client.get(url, headers=AUTH).get_json()
    assert entry["questions"] == ["怎么申请退款"]
    assert client.get("/admin/api/learned", headers=AUTH).get_json()["total"] == 0


def test_hand_taught_wordings_are_never_listed_or_undone_as_learned(client, bot) -> None:  # type: ignore[no-untyped-def]
    refund, asked, _ = _learn(client, bot)
    learned = client.get("/admin/api/learned", headers=AUTH).get_json()["items"][0]
    url = f"/admin/api/knowledge/{refund['id']}"
    # the admin re-saves the entry with that wording: it is hand-taught now
    resp = client.put(url, json={"questions": ["怎么申请退款", asked]}, headers=AUTH)
    assert resp.status_code == 200
    assert client.delete(f"/admin/api/learned/{learned['id']}", headers=AUTH).status_code == 404
    assert client.get(url, headers=AUTH).get_json()["questions"] == ["怎么申请退款", asked]


# -- synonym groups: exported the way they are imported ------------------------------------------


def test_synonym_groups_export_and_import_back(app, client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A file named like a synonyms file is imported as one: exporting to such a name must
    write the synonym groups (not Q:/A: blocks that would read back as bogus groups)."""
    from wxbot.qa.cli import kb

    create(client, question="银行卡丢了怎么办", answer="请挂失。")
    resp = client.post(
        "/admin/api/synonyms", json={"words": ["微伴豆", "伴豆", "小微积分"]}, headers=AUTH
    )
    assert resp.status_code == 201
    group = resp.get_json()
    before = client.get("/admin/api/synonyms?per_page=100", headers=AUTH).get_json()["total"]
    runner = app.test_cli_runner()
    for name, extra in [("my-synonyms.txt", []), ("groups.txt", ["--format", "synonyms"])]:
        out = str(tmp_path / name)
        result = runner.invoke(kb, ["export", out, *extra])
        assert result.exit_code == 0, result.output
        assert f"exported {before} synonym groups" in result.output, result.output
        text = Path(out).read_text(encoding="utf-8")
        assert text.startswith("# wxbot synonyms\n") and "微伴豆 伴豆 小微积分\n" in text
        assert "Q:" not in text
        client.delete(f"/admin/api/synonyms/{group['id']}", headers=AUTH)
        again = runner.invoke(kb, ["import", out])
        assert again.exit_code == 0, again.output
        assert f"synonym groups: added 1, unchanged {before - 1}" in again.output, again.output
        groups = client.get("/admin/api/synonyms?q=伴豆", headers=AUTH).get_json()["items"]
        assert [g["words"] for g in groups] == [["微伴豆", "伴豆", "小微积分"]]
        group = groups[0]
    assert entry_count(client) == 1  # the knowledge is untouched
