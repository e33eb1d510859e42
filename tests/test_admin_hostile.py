"""Hostile input to every route of the admin API: wrong JSON types, missing and unknown
fields, huge, empty, NUL, lone-surrogate and other odd text, ids and pages out of range,
malformed JSON, the wrong content type. Each gets a 4xx with a one-line JSON reason (or
succeeds), never a 500 or a traceback, and a refused request changes nothing stored.

The broad sweep runs on SQLite; the cases that reach the database's write paths run on
MySQL too. The focused regressions below it run on both."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from tests.console_helpers import login
from tests.helpers import say
from wxbot.llm import usage
from wxbot.llm.memory import CallCost
from wxbot.qa import store, writer
from wxbot.qa import synonyms as synonym_store
from wxbot.qa import unanswered as unanswered_store

TOKEN = "hostile-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/admin/api"

# what a refused request must leave as it was (the daily counts flush on their own clock)
NOT_DATA = {"console_login_failures", "kb_meta", "kb_changes", "alembic_version"}
NOT_DATA |= {"daily_counts", "daily_count_batches"}

ODD_TEXT = [
    "",
    "   ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\u200b",
    "\u2028",
    "🙂" * 3000,
    "问" * 100_000,
    "'; DROP TABLE kb_entries; --",
    "%_\\",
]
ODD_NUMBERS = [0, -1, 1.5, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308]
ODD_SHAPES = [None, True, False, [], {}, [[]], [None], ["ok", 1], {"a": "b"}, [{"a": 1}]]
ODD_VALUES = [*ODD_SHAPES, *ODD_NUMBERS, *ODD_TEXT]
MALFORMED = [b"{not json", b'{"a": 1}{', b"\xff\xfe\x00", b"null", b"[" * 100_000, b"1e999999"]

# route -> a body it accepts (placeholders: {entry}, {unanswered}, {other} are ids)
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/knowledge"): {
        "question": "新问题",
        "similar": ["新问法"],
        "answer": "新答案",
        "language": "zh",
    },
    ("put", "/knowledge/{entry}"): {"questions": ["改后的问题"], "answer": "改后的答案"},
    ("post", "/knowledge/{entry}/questions"): {"questions": ["又一个问法"]},
    ("post", "/synonyms"): {"words": ["遗失", "丢了"]},
    ("put", "/synonyms/{synonyms}"): {"words": ["遗失", "不见了"]},
    ("post", "/unanswered/{unanswered}/attach"): {"entry_id": "{entry}", "similar": ["{other}"]},
    ("post", "/unanswered/{unanswered}/answer"): {"answer": "新答案", "similar": ["{other}"]},
    ("post", "/llm/answers/{llm}/promote"): {"question": "提升的问题", "answer": "提升的答案"},
    ("put", "/sessions/o_u"): {"history_rounds": 3},
}
EXTRA_FIELDS = {"question": "questions", "questions": "question"}  # the other spelling

BAD_IDS = ["0", "-1", "1.5", "abc", "1e3", "%00", "true", str(2**63), str(10**30), "99999"]
BAD_OPENIDS = ["%00", "%ED%A0%80", "%FF", "x" * 5000, "o_u%20", "%20o_u", "O_U", "'", "%25"]
BAD_QUERIES = [
    "page=-1",
    "page=0",
    "page=1.5",
    f"page={10**12}",
    f"page={10**30}",
    "per_page=0",
    f"per_page={10**12}",
    "per_page=abc",
    "page=",
    "page=%00",
    "page=1&page=-1",
    "q=%00",
    "q=" + "x" * 100_000,
    "q=%ED%A0%80",
    "q=%25_%5C",
    "group=1&page=2",
    "group=%00",
    "openid=%00",
    "openid=" + "x" * 5000,
    "openid=o_u%20",
]
LISTS = ["knowledge", "synonyms", "learned", "unanswered", "sessions", "llm/answers", "stats"]


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token=TOKEN)


class World:
    """Something for every route to act on: an entry, unanswered questions, a synonym group,
    a kept LLM answer, a user; what a successful request used up is made again."""

    def __init__(self, app: Any, bot: Any) -> None:
        self.engine = app.extensions["wxbot.engine"]
        self.bot = bot
        self.serial = itertools.count()
        say(bot, "o_u", "你好")

    def ids(self) -> dict[str, int]:
        """Ids of things to act on (made again when a request used them up)."""
        with self.engine.begin() as conn:
            entry = conn.execute(select(func.max(store.entries.c.id))).scalar()
            if entry is None:
                question = f"原有问题{next(self.serial)}"
                entry = writer.create_entry(conn, [question], "原有答案", now=1.0, source="api")
            synonyms = conn.execute(select(func.max(synonym_store.synonyms.c.id))).scalar()
            kept = "SELECT max(id) FROM llm_answers WHERE entry_id IS NULL"
            llm = conn.execute(text(kept)).scalar()
            if llm is None:
                question = f"天为什么是蓝的{next(self.serial)}"
                usage.keep_answer(conn, "o_u", question, "散射", "m", CallCost(1, 1), 1.0)
                llm = conn.execute(text(kept)).scalar()
        unanswered = self._unanswered()
        return {
            "entry": entry,
            "unanswered": unanswered[0],
            "other": unanswered[1],
            "synonyms": synonyms,
            "llm": llm,
        }

    def _unanswered(self) -> list[int]:
        with self.engine.begin() as conn:
            ids = conn.execute(select(store.unanswered.c.id).limit(2)).scalars().all()
            while len(ids) < 2:
                unanswered_store.record_unanswered(
                    conn, f"火星上有没有信号{next(self.serial)}", 1.0
                )
                ids = conn.execute(select(store.unanswered.c.id).limit(2)).scalars().all()
        return list(ids)


def snapshot(engine: Any) -> dict[str, list[str]]:
    with engine.connect() as conn:
        names = sorted(set(inspect(conn).get_table_names()) - NOT_DATA)
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")))) for t in names}


def fill(value: Any, ids: dict[str, int]) -> Any:
    """``value`` with its "{name}" placeholders replaced by the ids they name."""
    if isinstance(value, str) and value.startswith("{") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def body_cases(body: dict[str, Any], values: list[Any]) -> Iterator[Any]:
    """Bodies that are not objects, then each field missing, set to each value, doubled by its
    other spelling, and an unknown field."""
    yield from ODD_SHAPES
    for name in body:
        yield {k: v for k, v in body.items() if k != name}
        for value in values:
            yield {**body, name: value}
            if isinstance(body[name], list):
                yield {**body, name: [*body[name], value]}
        if name in EXTRA_FIELDS:
            yield {**body, EXTRA_FIELDS[name]: body[name]}
    yield {**body, "extra": 1}
    yield {**body, "": None}


def check(resp: Any, what: object) -> None:
    raw = resp.get_data(as_text=True)
    assert resp.status_code < 500, (what, resp.status_code, raw[:300])
    assert "Traceback" not in raw, what
    assert resp.is_json, (what, raw[:300])
    if resp.status_code >= 400:
        error = resp.get_json()["error"]
        assert isinstance(error, str) and error.strip() and "\n" not in error, (what, error)


def send(client: Any, world: World, method: str, path: str, **kw: Any) -> Any:
    """Send one request; a refused one (4xx) must have changed nothing stored."""
    before = snapshot(world.engine)
    resp = getattr(client, method)(API + path, headers=AUTH, **kw)
    check(resp, (method, path, repr(kw)[:200]))
    if 400 <= resp.status_code < 500:
        assert snapshot(world.engine) == before, ("refused but changed", method, path, kw)
    return resp


def sweep_bodies(client: Any, world: World, values: list[Any], malformed: bool) -> None:
    for (method, route), body in BODIES.items():
        cases: list[dict[str, Any]] = [{"json": b} for b in body_cases(body, values)]
        if malformed:
            cases += [{"data": raw, "content_type": "application/json"} for raw in MALFORMED]
            cases += [{"data": json.dumps(body)}, {"data": "a=1", "content_type": "text/plain"}]
            cases += [
                {"data": json.dumps(body), "content_type": "application/x-www-form-urlencoded"}
            ]
        for kw in cases:
            ids = world.ids()
            if "json" in kw:
                # ensure_ascii: a lone surrogate travels as its \\uXXXX escape, as a client sends it
                raw = json.dumps(fill(kw["json"], ids))
                kw = {"data": raw, "content_type": "application/json"}
            send(client, world, method, route.format(**ids), **kw)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sweep_every_route_with_hostile_input(app, client, bot) -> None:  # type: ignore[no-untyped-def]
    world = World(app, bot)
    sweep_bodies(client, world, ODD_VALUES, malformed=True)
    for path in ["/knowledge/{}", "/synonyms/{}"]:
        for bad in BAD_IDS:
            for method in ("get", "put", "delete"):
                send(client, world, method, path.format(bad), json={"answer": "x"})
    for bad in BAD_IDS:
        for method, path in [
            ("delete", "/learned/{}"),
            ("post", "/llm/answers/{}/promote"),
            ("post", "/unanswered/{}/attach"),
            ("post", "/unanswered/{}/answer"),
            ("post", "/knowledge/{}/questions"),
            ("delete", "/knowledge/{}/questions?question=x"),
        ]:
            send(client, world, method, path.format(bad), json={"entry_id": 1, "answer": "x"})
    for bad in BAD_OPENIDS:
        for method, path in [
            ("get", "/sessions/{}"),
            ("put", "/sessions/{}"),
            ("delete", "/sessions/{}"),
            ("get", "/sessions/{}/history"),
            ("delete", "/sessions/{}/history"),
        ]:
            send(client, world, method, path.format(bad), json={"history_rounds": 2})
    for name in LISTS:
        for query in BAD_QUERIES:
            send(client, world, "get", f"/{name}?{query}")
    entry = world.ids()["entry"]
    for query in [
        "",
        "question=",
        "question=%00",
        "question=" + "x" * 100_000,
        "question=%ED%A0%80",
    ]:
        send(client, world, "delete", f"/knowledge/{entry}/questions?{query}")
    for method in ("patch", "post"):
        send(client, world, method, "/stats")
    assert client.get(f"{API}/sessions/o_u", headers=AUTH).status_code == 200


def test_hostile_text_and_ids_on_the_write_paths(app, client, bot) -> None:  # type: ignore[no-untyped-def]
    """What passes the JSON checks and reaches the database: odd text and big numbers (the
    sweep above, on SQLite and MySQL)."""
    world = World(app, bot)
    sweep_bodies(client, world, [*ODD_TEXT, 2**31, 2**63, -1], malformed=False)


# -- the bugs the sweep found --------------------------------------------------------------------


def test_a_search_longer_than_any_entry_is_422_not_500(app, client) -> None:  # type: ignore[no-untyped-def]
    """SQLite refuses a LIKE pattern over 50,000 bytes ("LIKE or GLOB pattern too complex"):
    ?q= of 100,000 characters was a 500."""
    resp = client.post(
        f"{API}/knowledge", json={"question": "发票", "answer": "在订单页"}, headers=AUTH
    )
    assert resp.status_code == 201
    resp = client.get(f"{API}/knowledge?q=" + "x" * 100_000, headers=AUTH)
    assert resp.status_code == 422
    assert resp.get_json()["error"] == "the search is longer than 10000 characters"
    for longest in ("🙂" * 10_000, "%" * 10_000, "\\" * 10_000):  # the most bytes a LIKE gets
        resp = client.get(f"{API}/knowledge", query_string={"q": longest}, headers=AUTH)
        assert resp.status_code == 200 and resp.get_json()["total"] == 0
    login(client, TOKEN)  # the console's searches share it: a page that says why
    for path in ("/admin/knowledge", "/admin/knowledge/search.json"):
        page = client.get(path, query_string={"q": "x" * 100_000})
        assert page.status_code == 422 and "搜索词不能超过 10000 个字" in page.text


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/sessions/o_u%20"),
        ("get", "/sessions/o_u%20/history"),
        ("put", "/sessions/o_u%20"),
        ("delete", "/sessions/o_u%20/history"),
        ("delete", "/sessions/o_u%20"),
        ("delete", "/sessions/o_u%20%20"),
    ],
)
def test_an_openid_with_trailing_spaces_is_not_another_users(client, bot, method, path) -> None:  # type: ignore[no-untyped-def]
    """MySQL compares strings ignoring trailing spaces: DELETE /sessions/o_u%20 forgot o_u (and
    PUT set o_u's window, DELETE .../history cleared o_u's history)."""
    say(bot, "o_u", "你好")
    say(bot, "o_u", "天气")
    before = client.get(f"{API}/sessions/o_u", headers=AUTH).get_json()
    resp = getattr(client, method)(API + path, json={"history_rounds": 1}, headers=AUTH)
    assert resp.status_code == 404, resp.get_json()
    assert resp.get_json()["error"].startswith("no session for 'o_u ")
    assert client.get(f"{API}/sessions/o_u", headers=AUTH).get_json() == before


def test_the_console_does_not_forget_the_user_with_the_trailing_space_either(
    app, client, bot
) -> None:  # type: ignore[no-untyped-def]
    from tests.console_helpers import csrf

    say(bot, "o_u", "你好")
    login(client, TOKEN)
    assert client.get("/admin/conversations/o_u%20").status_code == 404
    token = csrf(client, "/admin/conversations/o_u")
    resp = client.post("/admin/conversations/o_u%20/forget", data={"csrf_token": token})
    assert resp.status_code == 404
    assert client.get("/admin/conversations/o_u").status_code == 200


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"answer": "\x00"}, "the answer holds the control character U+0000"),
        ({"answer": "好的\x1b[31m"}, "the answer holds the control character U+001B"),
        ({"answer": "\u200b\ufeff "}, "the answer has no visible text"),
        ({"questions": ["a\x00b"]}, "a question holds the control character U+0000"),
    ],
)
def test_an_answer_or_question_wechat_cannot_show_is_refused(client, bot, body, reason) -> None:  # type: ignore[no-untyped-def]
    """Such an answer was stored and reached users as an empty reply (XML cannot carry it)."""
    created = client.post(
        f"{API}/knowledge", json={"question": "营业时间", "answer": "九点"}, headers=AUTH
    )
    entry = created.get_json()["id"]
    resp = client.put(f"{API}/knowledge/{entry}", json=body, headers=AUTH)
    assert resp.status_code == 422 and resp.get_json()["error"].startswith(reason)
    assert client.get(f"{API}/knowledge/{entry}", headers=AUTH).get_json()["answer"] == "九点"


def test_tabs_and_line_breaks_stay_allowed_in_answers(client) -> None:  # type: ignore[no-untyped-def]
    answer = "第一行\n\t第二行\r\n第三行"
    resp = client.post(
        f"{API}/knowledge", json={"question": "多行", "answer": answer}, headers=AUTH
    )
    assert resp.status_code == 201, resp.get_json()
