"""「Why did the bot answer that?」 where an operator asks it: GET /admin/api/knowledge/match,
`wxbot kb match`, the console's 「试一试」 form. Each shows the decision the bot makes for the
question (the same as a user asking it gets) and the candidates with their scores; bad input
is a 422 with a reason. Starter FAQ, words alone. SQLite and MySQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.console_helpers import ADMIN_TOKEN, admin_fixture, console_app_fixture, login  # noqa: F401
from tests.helpers import content, say
from wxbot.qa.cli import kb as kb_group
from wxbot.qa.importer import import_files
from wxbot.qa.kb import CONFIDENT

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
STARTER = [str(KNOWLEDGE / "faq.txt"), str(KNOWLEDGE / "faq-languages.txt")]
PARCEL = "包裹丢了怎么办"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
URL = "/admin/api/knowledge/match"


@pytest.fixture
def starter(app, clock):  # type: ignore[no-untyped-def]
    report = import_files(app.extensions["wxbot.engine"], STARTER, now=clock())
    assert report.written and not report.errors
    return app


def match(client, **params):  # type: ignore[no-untyped-def]
    return client.get(URL, query_string=params, headers=AUTH)


def test_the_api_explains_what_the_bot_answers(starter) -> None:  # type: ignore[no-untyped-def]
    client, bot = starter.test_client(), starter.extensions["wxbot.bot"]
    resp = match(client, q="孩子丢了怎么办")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body.keys() == {
        "question",
        "language",
        "decision",
        "suggestions",
        "semantic",
        "candidates",
        "thresholds",
        "fusion",
    }
    assert body["question"] == "孩子丢了怎么办" and body["language"] == "zh"  # detected
    decision = body["decision"]
    assert (decision["kind"], decision["by"], decision["entry_id"]) == ("suggest", "words", None)
    parcel = body["candidates"][0]
    assert parcel["question"] == PARCEL and body["suggestions"][0]["question"] == PARCEL
    assert parcel["score"] == decision["top"] < CONFIDENT
    assert parcel["similarity"] is None and parcel["fused"] is None
    assert parcel["evidence"]["overlap"] > 0.5 and parcel["evidence"]["language"] == 1.0
    assert body["thresholds"]["confident"] == CONFIDENT and body["semantic"] == "off"
    # the bot, asked the same, offers the same did-you-mean
    assert PARCEL in content(say(bot, "o_child", "孩子丢了怎么办"))

    car = match(client, q="车丢了怎么办", language="zh").get_json()
    assert car["decision"]["kind"] == "answer" and car["decision"]["question"] == PARCEL
    entry = car["decision"]["entry_id"]
    answer = client.get(f"/admin/api/knowledge/{entry}", headers=AUTH).get_json()["answer"]
    assert content(say(bot, "o_car", "车丢了怎么办")) == answer  # what the user gets
    # the language factor: the English entry 「hello」 for an English user (detected from the
    # question when none is given), halved for a Chinese one
    english = match(client, q="hello").get_json()
    chinese = match(client, q="hello", language="zh").get_json()
    assert (english["language"], chinese["language"]) == ("en", "zh")
    en, zh = english["candidates"][0], chinese["candidates"][0]
    assert en["question"] == zh["question"] == "hello"
    assert (en["evidence"]["language"], zh["evidence"]["language"]) == (1.0, 0.5)
    assert zh["score"] == pytest.approx(en["score"] / 2, abs=1e-3)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "missing q"),
        ({"q": ""}, "the question is empty"),
        ({"q": "   "}, "the question is empty"),
        ({"q": "丢" * 501}, "longer than 500 characters"),
        ({"q": "你好", "language": "xx"}, "unknown language 'xx'"),
    ],
)
def test_the_api_refuses_what_it_cannot_match(starter, query, reason) -> None:  # type: ignore[no-untyped-def]
    resp = match(starter.test_client(), **query)
    assert resp.status_code == 422 and reason in resp.get_json()["error"]


def test_the_api_wants_the_admin_token(starter) -> None:  # type: ignore[no-untyped-def]
    client = starter.test_client()
    assert client.get(URL, query_string={"q": "你好"}).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.get(URL, query_string={"q": "你好"}, headers=wrong).status_code == 403


def test_the_cli_prints_the_decision_and_the_candidates(starter) -> None:  # type: ignore[no-untyped-def]
    runner = starter.test_cli_runner()
    result = runner.invoke(kb_group, ["match", "孩子丢了怎么办"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "question: 孩子丢了怎么办  (language zh)"
    assert re.fullmatch(rf"decision: did you mean: #\d+ {PARCEL} \(0\.\d{{3}}\), .+", lines[1])
    assert lines[2].startswith("by: words alone; meaning: off")
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["#", "entry", "words"])
    first = lines[header + 1].split()
    assert first[0] == "1" and first[-1] == PARCEL
    as_json = runner.invoke(kb_group, ["match", "孩子丢了怎么办", "--json"])
    assert as_json.exit_code == 0
    api = match(starter.test_client(), q="孩子丢了怎么办").get_json()
    assert json.loads(as_json.output) == api
    english = runner.invoke(kb_group, ["match", "hello", "--language", "EN", "--json"])
    assert json.loads(english.output)["language"] == "en"


def test_the_cli_refuses_a_blank_question_and_an_unknown_language(starter) -> None:  # type: ignore[no-untyped-def]
    runner = starter.test_cli_runner()
    blank = runner.invoke(kb_group, ["match", "  "])
    assert blank.exit_code == 2 and "the question is empty" in blank.output
    bad = runner.invoke(kb_group, ["match", "你好", "--language", "xx"])
    assert bad.exit_code == 2 and "'xx' is not one of" in bad.output


@pytest.fixture
def console(app, clock, admin):  # type: ignore[no-untyped-def]
    report = import_files(app.extensions["wxbot.engine"], STARTER, now=clock())
    assert report.written
    return admin


def test_the_console_tries_a_question(console) -> None:  # type: ignore[no-untyped-def]
    page = console.get("/admin/knowledge").text
    assert 'id="try-question"' in page and 'action="/admin/knowledge/match"' in page
    resp = console.get("/admin/knowledge/match", query_string={"q": "孩子丢了怎么办"})
    assert resp.status_code == 200
    html = resp.text
    decision = html[html.index('id="match-decision"') : html.index('id="match-candidates"')]
    assert "给出「你是不是想问」" in decision and PARCEL in decision and "只按词语匹配" in decision
    rows = re.findall(
        r"<tr>(.*?)</tr>", html[html.index("<tbody>", html.index('id="match-candidates"')) :], re.S
    )
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)
    ]
    assert cells[0] == "1" and cells[2] == f"{PARCEL} 建议"
    assert re.fullmatch(r"0\.\d{3}", cells[3])  # its word score
    answered = console.get("/admin/knowledge/match", query_string={"q": "车丢了怎么办"}).text
    assert "直接回答" in answered and f'{PARCEL} <span class="tag">回答</span>' in answered


def test_the_console_form_escapes_and_refuses(console) -> None:  # type: ignore[no-untyped-def]
    hostile = "<script>alert(1)</script>丢了怎么办"
    html = console.get("/admin/knowledge/match", query_string={"q": hostile}).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    form_only = console.get("/admin/knowledge/match")
    assert form_only.status_code == 200 and 'id="match-decision"' not in form_only.text
    for query, message in (
        ({"q": " "}, "问题不能为空。"),
        ({"q": "丢" * 501}, "问题不能超过 500 个字。"),
        ({"q": "你好", "language": "xx"}, "不支持的语言「xx」"),
    ):
        resp = console.get("/admin/knowledge/match", query_string=query)
        assert resp.status_code == 422 and message in resp.text


def test_the_console_form_needs_a_login(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    resp = client.get("/admin/knowledge/match", query_string={"q": "你好"})
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]
    login(client)
    assert client.get("/admin/knowledge/match", query_string={"q": "你好"}).status_code == 200
