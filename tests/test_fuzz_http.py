"""Property-based fuzzing of the whole HTTP surface (hypothesis): the admin JSON API, the
console's pages and forms, and ``/wechat`` in plain and safe (AES) mode.

The project's rule, checked on every generated request: a bad input gets a clear error (a
4xx with a reason, or a helpful chat reply), never a 5xx, never a traceback, no exception
in the log, and nothing already stored is lost. Requests are authorised (the admin token, a
logged-in console session with its CSRF token, a validly signed and encrypted WeChat
envelope around the fuzzed message) so that the handlers, the parser and the dialogue are
reached rather than the front door. Refused requests (4xx) must leave every table as it was;
and after each run, the "sentinel" knowledge entries, synonym group and user made before it
are all still there unchanged: the fuzzed writes and deletes act on things made for them
("victims"), and every id the fuzzer makes up steers clear of the sentinels'.

``derandomize=True``: every run (and CI) tries the same inputs. Each test runs on SQLite
and on MySQL (the ``db_url`` fixture), there with fewer examples; ``WXBOT_FUZZ_SCALE=10``
runs ten times as many everywhere, for a longer hunt.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import os
import re
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import inspect, select, text

from tests.console_helpers import csrf, csrf_of, login
from tests.helpers import say
from wxbot.llm import usage
from wxbot.llm.memory import CallCost
from wxbot.qa import learning, store, unanswered, writer
from wxbot.qa import synonyms as synonym_store
from wxbot.wechat.endpoint import APOLOGY
from wxbot.wechat.security import aes_key, signature
from wxbot.wechat.simulator import SimulatorError, WeChatSimulator

ADMIN_TOKEN = "fuzz-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WX_TOKEN, APPID = "fuzz-wechat-token", "wx00fuzz00000001"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CLOSED = "http://127.0.0.1:9"  # outside services refuse at once (no network in tests)
TEACHER = "o_fuzz_teacher"  # may teach by chat (WXBOT_ADMIN_OPENIDS)

# examples per test on SQLite; MySQL runs the first MYSQL_SHARE of the same inputs' budget.
# WXBOT_FUZZ_SCALE=10 runs ten times as many (a longer hunt than CI's).
# (derandomized: every CI run tries the same inputs, so the budget buys coverage once; kept
# small for the suite's 15 minutes)
EXAMPLES = {"api": 200, "api_auth": 60, "console": 150, "console_login": 40, "any_path": 60}
EXAMPLES |= {"wechat": 150, "wechat_query": 100, "conversations": 60}
MYSQL_SHARE = 0.4

# what a refused request may still change (time-driven counters, login throttling)
NOT_DATA = {"console_login_failures", "daily_counts", "daily_count_batches", "alembic_version"}

TRACEBACK = ("Traceback", 'File "')
STATUSES: Counter[int] = Counter()  # answers by class (printed with -s)


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(
        admin_token=ADMIN_TOKEN,
        token=WX_TOKEN,
        appid=APPID,
        encoding_aes_key=KEY,
        admin_openids=frozenset({TEACHER}),
        weather_url=CLOSED,
        geocoding_url=CLOSED,
        music_url=CLOSED,
        api_url=CLOSED,
    )


def run(name: str, app: Any, test: Callable[..., None], halves: bool = True) -> None:
    """Run a @given test with this file's settings: ``EXAMPLES[name]`` inputs on SQLite.
    ``halves``: the test takes ``clean`` first; half the inputs are clean (every value
    good: the request should succeed, so what happens after validation is reached), half
    fuzzed (most values good, any may be bad)."""
    examples = int(EXAMPLES[name] * float(os.environ.get("WXBOT_FUZZ_SCALE", "1")))
    if app.extensions["wxbot.engine"].dialect.name != "sqlite":
        examples = max(20, int(examples * MYSQL_SHARE))
    configured = settings(
        max_examples=examples // 2 if halves else examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )(test)
    if halves:
        configured(True)
        configured(False)
    else:
        configured()


# -- what goes wrong, found on the way ---------------------------------------------------------


class ErrorLog(logging.Handler):
    """Every exception logged (with its traceback) while a request was handled: a bug
    reached, even when the answer itself was a polite 4xx or an apology."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()}: {r.exc_info[1]!r}" for r in self.records]  # type: ignore[index]
        self.records.clear()
        return found


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _statuses(request) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """What the fuzzing got back, printed with ``-s`` (is it reaching past validation?)."""
    STATUSES.clear()
    yield
    if STATUSES:
        print(f"\n{request.node.name}: answers by status class {dict(sorted(STATUSES.items()))}")


def no_traceback(body: str, what: object) -> None:
    for marker in TRACEBACK:
        assert marker not in body, ("traceback text in the answer", what, body[:500])


def snapshot(engine: Any) -> dict[str, list[str]]:
    """Every stored row (but for NOT_DATA), to compare before and after a refused request."""
    with engine.connect() as conn:
        names = sorted(set(inspect(conn).get_table_names()) - NOT_DATA)
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")))) for t in names}


# -- the world: sentinels that must survive, victims made to be acted on ----------------------

PROTECTED: set[int] = set()  # ids no made-up number may name (the sentinels')
SAFE_ID = 424_242  # what a made-up id naming a sentinel becomes instead


def guard_int(value: int) -> int:
    return SAFE_ID if value in PROTECTED else value


def guard_text(value: str) -> str:
    """A text that would be read as a sentinel's id (in a path, a form, with a leading "#",
    in any script's digits) becomes SAFE_ID."""
    candidate = unquote(value).strip().lstrip("#").strip()
    try:
        number = int(candidate)
    except ValueError:
        return value
    return str(SAFE_ID) if number in PROTECTED else value


@dataclass(frozen=True)
class Victim:
    """A placeholder: made fresh when the request is sent (``kind``: what it is)."""

    kind: str  # entry | group | unanswered | llm | learned | openid | job
    part: str = "id"  # id | int (the id as a JSON number) | version | question


SENTINEL_ENTRIES = [
    (
        ["哨兵问题：图书馆周末几点开门", "周末图书馆开放时间"],
        "周六周日 9:00–17:00 🙂\n节假日另行通知。",
        None,
    ),
    (["Sentinel: how do I reset my card PIN?"], "Visit any branch with your ID.", "en"),
    (["哨兵：ตั๋วหาย ทำอย่างไร", "哨兵 lost ticket"], "请到服务台登记 🎫", "th"),
]
SENTINEL_WORDS = ["哨兵甲", "哨兵乙", "哨兵丙"]
SENTINEL_USER = "o_fuzz_sentinel_user"


class World:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.engine = app.extensions["wxbot.engine"]
        self.bot = app.extensions["wxbot.bot"]
        self.serial = itertools.count()
        self.client: Any = None  # the console test's client, for import jobs
        PROTECTED.clear()
        with self.engine.begin() as conn:
            self.entry_ids = [
                writer.create_entry(conn, questions, answer, now=1.0, source="api", language=lang)
                for questions, answer, lang in SENTINEL_ENTRIES
            ]
            self.group_id = synonym_store.create(conn, SENTINEL_WORDS, now=1.0)
        PROTECTED.update([*self.entry_ids, self.group_id])
        say(self.bot, SENTINEL_USER, "你好")
        say(self.bot, SENTINEL_USER, "你是谁")
        self.sentinels = self.read_sentinels()

    def read_sentinels(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for entry_id in self.entry_ids:
                entry = store.get_entry(conn, entry_id)
                found[f"entry {entry_id}"] = entry and {**entry.to_dict(), "hits": None}
            groups = [g.to_dict() for g in synonym_store.load(conn) if g.id == self.group_id]
            found["group"] = groups
        user = self.app.test_client().get(f"/admin/api/sessions/{SENTINEL_USER}", headers=AUTH)
        found["user"] = {k: user.get_json().get(k) for k in ("history", "history_rounds")}
        return found

    def check_sentinels(self) -> None:
        assert self.read_sentinels() == self.sentinels, "stored data was lost or changed"

    # -- victims --------------------------------------------------------------------------------

    def _n(self) -> int:
        return next(self.serial)

    def make(self, kind: str) -> dict[str, str]:
        """A fresh thing to act on: its ``id`` as it goes in a URL, its ``version`` (entries,
        groups) and ``question`` (entries)."""
        n = self._n()
        with self.engine.begin() as conn:
            if kind in ("entry", "learned"):
                question = f"victim question {n}"
                entry_id = writer.create_entry(
                    conn, [f"受害问题{n}", question], f"受害答案{n}", now=2.0, source="api"
                )
                if kind == "entry":
                    version = store.get_entry(conn, entry_id).version  # type: ignore[union-attr]
                    return {"id": str(entry_id), "version": version, "question": question}
                writer.add_questions(
                    conn, entry_id, [f"学到的问法{n}"], now=2.0, origin=learning.LEARNED
                )
                q = store.questions
                learned = select(q.c.id).where(
                    q.c.entry_id == entry_id, q.c.origin == learning.LEARNED
                )
                return {"id": str(conn.execute(learned).scalar_one())}
            if kind == "group":
                group_id = synonym_store.create(conn, [f"受害词{n}a", f"受害词{n}b"], now=2.0)
                version = next(g.version for g in synonym_store.load(conn) if g.id == group_id)
                return {"id": str(group_id), "version": version}
            if kind == "unanswered":
                unanswered.record_unanswered(conn, f"火星上有没有信号{n}", 2.0)
                u = store.unanswered
                return {"id": str(conn.execute(select(u.c.id).order_by(u.c.id.desc())).scalar())}
            if kind == "llm":
                usage.keep_answer(
                    conn, "o_fuzz_llm", f"天为什么是蓝的{n}", "散射", "m", CallCost(1, 1), 2.0
                )
                a = usage.answers
                return {"id": str(conn.execute(select(a.c.id).order_by(a.c.id.desc())).scalar())}
        if kind == "openid":
            openid = f"o_fuzz_victim_{n}"
            say(self.bot, openid, "你好")
            return {"id": openid}
        if kind == "job":
            return {"id": self._job(n)}
        raise AssertionError(kind)

    def _job(self, n: int) -> str:
        body = f"Q: 导入问题{n}\nA: 导入答案{n}\n".encode()
        data = {
            "csrf_token": csrf(self.client, "/admin/import"),
            "file": (_bytes_io(body), "a.txt"),
        }
        resp = self.client.post("/admin/import", data=data, content_type="multipart/form-data")
        assert resp.status_code == 303, resp.status_code
        job = resp.headers["Location"].rsplit("/", 1)[1]
        wait_for_job(self.client, job)
        return job

    def resolve(self, value: Any, made: dict[str, dict[str, str]] | None = None) -> Any:
        """``value`` with its Victims made (one of each kind per request) and its numbers
        steered clear of the sentinels."""
        made = {} if made is None else made
        if isinstance(value, Victim):
            if value.kind not in made:  # "unanswered2": a second one of the kind
                made[value.kind] = self.make(value.kind.rstrip("0123456789"))
            if value.part == "int":
                return int(made[value.kind]["id"])
            return made[value.kind].get(value.part, "")
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            return guard_int(value)
        if isinstance(value, str):
            return guard_text(value)
        if isinstance(value, list):
            return [self.resolve(v, made) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v, made) for v in value)
        if isinstance(value, dict):
            return {self.resolve(k, made): self.resolve(v, made) for k, v in value.items()}
        return value


def _bytes_io(data: bytes) -> Any:
    return io.BytesIO(data)


def wait_for_job(client: Any, job: str) -> None:
    """An import job runs in a thread: let it end before the next request (and teardown)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        resp = client.get(f"/admin/import/{job}/status")
        if resp.status_code != 200 or resp.get_json()["status"] not in ("checking", "importing"):
            return
        time.sleep(0.01)
    raise AssertionError(f"import job {job} did not finish")


@pytest.fixture
def world(app) -> Iterator[World]:  # type: ignore[no-untyped-def]
    made = World(app)
    yield made
    made.check_sentinels()
    PROTECTED.clear()


# -- strategies: text, numbers, JSON -----------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\udc80\udcff",
    "\u200b",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "\x7f\x1b[31m",
    "🙂",
    "👨‍👩‍👧‍👦",
    "𠀀𪚥",
    "İß",
    "'; DROP TABLE kb_entries; --",
    "%_\\",
    "%00",
    "<script>alert(1)</script>",
    "{{ 7*7 }}{% raw %}",
    "]]><xml>",
    "&amp;&#0;&#xD800;",
    "NaN",
    "-1",
    "0",
    "1e309",
    "٣",
    "²",
    "9" * 40,
    "zh",
    "EN ",
    "xx",
    "学习",
    "取消",
]
ANY_CHAR = st.characters(exclude_categories=())  # lone surrogates and control characters too
LONG_TEXT = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["x", "问", "🙂", "\x00", " ", "%"]),
    st.sampled_from([191, 192, 255, 256, 500, 501, 2049, 10_000, 10_001, 70_000]),
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(ANY_CHAR, max_size=20),
    st.sampled_from(NASTY_TEXT),
    LONG_TEXT,
)
SHORT_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(NASTY_TEXT[:20]))
INTS = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400]),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SHORT_TEXT, inner, max_size=4),
    max_leaves=8,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: most requests should get past validation."""
    return st.one_of(good, good, good, bad)


PRINTABLE = st.characters(exclude_categories=("Cs", "Cc"))  # what WeChat can carry
GOOD_QUESTION = st.builds(
    lambda n, t: f"新问题{n} {t}", st.integers(0, 10**9), st.text(PRINTABLE, max_size=8)
)
QUESTION = mostly(GOOD_QUESTION, TEXT)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


def id_segment(kind: str) -> st.SearchStrategy[Any]:
    """A path id: the victim, made-up numbers, and what is not a number at all."""
    garbage = [
        "0",
        "-1",
        "1.5",
        "abc",
        "1e3",
        "%00",
        "true",
        "+1",
        "%20",
        "%F0%9F%99%82",
        "%ED%A0%80",
        "%FF",
        str(2**63 - 1),
        str(2**63),
        str(10**30),
        "9" * 5000,
        "%D9%A3",  # ٣, an Arabic-Indic 3
    ]
    return st.one_of(
        st.just(Victim(kind)), INTS.map(str), st.sampled_from(garbage), TEXT.map(_quote)
    )


def _quote(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass")[:3000], safe="")


class Pick:
    """Draws for one request: a "clean" request draws only good values (it should succeed,
    so the fuzzing reaches what happens after validation); a fuzzed one mostly good ones."""

    def __init__(self, draw: Callable[..., Any], clean: bool) -> None:
        self.draw, self.clean = draw, clean

    def __call__(self, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return self.draw(good if self.clean else mostly(good, bad))


GOOD_WORD = st.builds(lambda n: f"词{n}", st.integers(0, 10**6))
ANY_QUESTIONS = st.lists(QUESTION, max_size=4)
GOOD_QUESTIONS = st.lists(GOOD_QUESTION, min_size=1, max_size=4)
GOOD_ANSWER = st.builds(lambda t: f"新答案 {t}", st.text(PRINTABLE, max_size=20))
GOOD_LANGUAGE = st.sampled_from([None, "", "zh", "en", "th", "tl", "ja", " JA "])
BAD_LANGUAGE = st.one_of(st.sampled_from(["fr", "zh-CN", "ZH_cn"]), TEXT)
BodyMaker = Callable[[Pick], dict[str, Any]]


def _entry_body(p: Pick) -> dict[str, Any]:
    body: dict[str, Any] = {"answer": p(GOOD_ANSWER, TEXT)}
    if p.draw(st.booleans()):
        body["question"] = p(GOOD_QUESTION, TEXT)
        if p.draw(st.booleans()):
            body["similar"] = p(st.lists(GOOD_QUESTION, max_size=3), ANY_QUESTIONS)
    else:
        body["questions"] = p(GOOD_QUESTIONS, ANY_QUESTIONS)
    if p.draw(st.booleans()):
        body["language"] = p(GOOD_LANGUAGE, BAD_LANGUAGE)
    return body


def _update_body(p: Pick) -> dict[str, Any]:
    body = _entry_body(p)
    keep = p.draw(st.sampled_from(sorted(body)))
    for name in p.draw(st.sets(st.sampled_from(sorted(body)))):
        if name != keep and not (name == "question" and "similar" in body):
            del body[name]
    return body


def _add_questions_body(p: Pick) -> dict[str, Any]:
    if p.draw(st.booleans()):
        return {"question": p(GOOD_QUESTION, TEXT)}
    return {"questions": p(GOOD_QUESTIONS, ANY_QUESTIONS)}


def _words_body(p: Pick) -> dict[str, Any]:
    words = p(
        st.lists(GOOD_WORD, min_size=2, max_size=4, unique=True),
        st.one_of(st.lists(SHORT_TEXT, max_size=4), TEXT),
    )
    return {"words": words}


def _attach_body(p: Pick) -> dict[str, Any]:
    body = {
        "entry_id": p(
            st.just(Victim("entry", "int")), st.one_of(st.just(Victim("entry")), JSON_VALUE)
        )
    }
    if p.draw(st.booleans()):
        body["similar"] = p(st.lists(st.just(Victim("unanswered2", "int")), max_size=1), JSON_VALUE)
    return body


def _answer_body(p: Pick) -> dict[str, Any]:
    body = {"answer": p(GOOD_ANSWER, TEXT)}
    if p.draw(st.booleans()):
        body["similar"] = p(st.lists(st.just(Victim("unanswered2", "int")), max_size=1), JSON_VALUE)
    return body


def _promote_body(p: Pick) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if p.draw(st.booleans()):
        body["question"] = p(GOOD_QUESTION, TEXT)
    if p.draw(st.booleans()):
        body["answer"] = p(GOOD_ANSWER, TEXT)
    return body


def _window_body(p: Pick) -> dict[str, Any]:
    rounds = p(
        st.one_of(st.none(), st.integers(1, 50)), st.one_of(st.integers(-2, 60), JSON_SCALAR)
    )
    return {"history_rounds": rounds}


API_ROUTES: list[tuple[str, str, BodyMaker | None]] = [
    ("GET", "/knowledge", None),
    ("POST", "/knowledge", _entry_body),
    ("GET", "/knowledge/{entry}", None),
    ("PUT", "/knowledge/{entry}", _update_body),
    ("DELETE", "/knowledge/{entry}", None),
    ("POST", "/knowledge/{entry}/questions", _add_questions_body),
    ("DELETE", "/knowledge/{entry}/questions", None),
    ("GET", "/synonyms", None),
    ("POST", "/synonyms", _words_body),
    ("GET", "/synonyms/{group}", None),
    ("PUT", "/synonyms/{group}", _words_body),
    ("DELETE", "/synonyms/{group}", None),
    ("GET", "/learned", None),
    ("DELETE", "/learned/{learned}", None),
    ("GET", "/unanswered", None),
    ("POST", "/unanswered/{unanswered}/attach", _attach_body),
    ("POST", "/unanswered/{unanswered}/answer", _answer_body),
    ("GET", "/llm/answers", None),
    ("POST", "/llm/answers/{llm}/promote", _promote_body),
    ("GET", "/sessions", None),
    ("GET", "/sessions/{openid}", None),
    ("PUT", "/sessions/{openid}", _window_body),
    ("GET", "/sessions/{openid}/history", None),
    ("DELETE", "/sessions/{openid}/history", None),
    ("DELETE", "/sessions/{openid}", None),
    ("GET", "/stats", None),
]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
QUERY_NAMES = ["page", "per_page", "q", "group", "openid", "question", "offset", "limit", "sort"]
QUERY_VALUES = st.one_of(
    INTS.map(str),
    TEXT,
    st.sampled_from(
        ["", "1", "2", "true", "yes", "-1", "0", "1.5", "%", "%ZZ", "%ED%A0%80", "%FF%FE"]
    ),
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/merge-patch+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",
]
MALFORMED_JSON = [
    b"{not json",
    b'{"a": 1}{',
    b"\xff\xfe\x00",
    b"null",
    b"[" * 50_000,
    b'{"a":' * 5_000,
    b"1e999999",
    b'{"answer": "\\ud800"}',
    b'{"answer": "x", "answer": 1}',
    b"\xef\xbb\xbf{}",
    b'{"entry_id": ' + b"9" * 5000 + b"}",
    b"",
]


@st.composite
def query_string(draw: Callable[..., Any]) -> str:
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), SHORT_TEXT), QUERY_VALUES), max_size=4
        )
    )
    parts = []
    for name, value in pairs:
        raw = draw(st.booleans()) and value.startswith("%")  # a percent escape left as is
        parts.append(f"{_quote(name)}={value if raw else _quote(value)}")
    return "&".join(parts)


def api_body(p: Pick, maker: BodyMaker | None) -> dict[str, Any]:
    """Keyword arguments for the test client: the body (made by ``maker``, then perhaps
    mangled) and its content type."""
    body: Any = maker(p) if maker is not None else None
    if p.clean:
        if body is None:
            return {}
        return {"json_value": body, "ascii": True, "content_type": "application/json"}
    shapes = ["fields", "drop", "extra", "any", "raw", "none"]
    shape = p.draw(mostly(st.just("good"), st.sampled_from(shapes)))
    if shape == "fields" and isinstance(body, dict) and body:
        for name in p.draw(st.sets(st.sampled_from(sorted(body)), min_size=1)):
            body[name] = p.draw(JSON_VALUE)
    elif shape == "drop" and isinstance(body, dict) and body:
        del body[p.draw(st.sampled_from(sorted(body)))]
    elif shape == "extra" and isinstance(body, dict):
        body[p.draw(SHORT_TEXT)] = p.draw(JSON_VALUE)
    elif shape == "any" or body is None and shape != "none":
        body = p.draw(JSON_VALUE)
    if shape == "raw":
        raw = p.draw(st.one_of(st.sampled_from(MALFORMED_JSON), st.binary(max_size=64)))
        return {"data": raw, "content_type": p.draw(st.sampled_from(CONTENT_TYPES))}
    if shape == "none":
        return {}
    content_type = p.draw(
        mostly(st.sampled_from(CONTENT_TYPES[:2]), st.sampled_from(CONTENT_TYPES))
    )
    ascii_only = p.draw(mostly(st.just(True), st.just(False)))
    return {"json_value": body, "ascii": ascii_only, "content_type": content_type}


def encode_json(value: Any, ascii_only: bool) -> bytes:
    """As a client would send it: NaN and Infinity as Python writes them; a lone surrogate
    as its \\uXXXX escape (ascii_only) or as the invalid UTF-8 bytes some encoders emit."""
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode(
        "utf-8", "surrogatepass"
    )


IF_MATCH = st.one_of(
    st.none(),
    st.none(),
    st.just("*"),
    st.just(Victim("entry", "version")),
    st.just(Victim("group", "version")),
    st.sampled_from(['"abc"', 'W/"abc"', '""', '"', "W/", ",", '"a", "b"', '*, "x"']),
    HEADER_TEXT,
)


# -- checks ------------------------------------------------------------------------------------


def check_api(resp: Any, method: str, what: object) -> None:
    body = resp.get_data().decode("utf-8", "replace")
    assert resp.status_code < 500, (what, resp.status_code, body[:500])
    no_traceback(body, what)
    if method == "HEAD" or method == "OPTIONS" and resp.status_code < 400:
        return  # no body
    assert resp.is_json, ("not JSON", what, resp.status_code, body[:300])
    if resp.status_code >= 400:
        reason = resp.get_json().get("error")
        assert isinstance(reason, str) and reason.strip(), (
            "4xx without a reason",
            what,
            body[:300],
        )


def send_checked(
    client: Any,
    world: World,
    errors: ErrorLog,
    method: str,
    path: str,
    check: Callable[[Any, str, object], None],
    **kw: Any,
) -> Any:
    """Send one request: checked by ``check``, no exception logged, and a refused one (4xx)
    changed nothing stored."""
    before = snapshot(world.engine)
    resp = client.open(path, method=method, **kw)
    STATUSES[resp.status_code // 100 * 100] += 1
    what = (method, path[:300], repr(kw)[:300])
    check(resp, method, what)
    assert not errors.take(), ("an exception was logged", what)
    if 400 <= resp.status_code < 500:
        assert snapshot(world.engine) == before, ("refused but changed something", what)
    return resp


# -- the admin JSON API ------------------------------------------------------------------------

OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


CLEAN_QUERY = st.one_of(
    st.just(""),
    st.builds(lambda n, m: f"page={n}&per_page={m}", st.integers(1, 3), st.integers(1, 100)),
    st.builds(lambda t: "q=" + _quote(t), st.text(max_size=6)),
    st.just("group=1"),
)


def test_fuzz_admin_api(app, world, errors) -> None:  # type: ignore[no-untyped-def]
    """Every route of /admin/api with its own and other methods; bodies from good to any
    JSON value (nested, huge numbers, NaN, NUL, lone surrogates, long text, wrong types per
    field), not JSON at all or with another content type; odd query strings, path ids and
    If-Match headers. Deletes and writes act on victims made for them."""
    client = app.test_client()

    @given(route=st.sampled_from(API_ROUTES), data=st.data())
    def one(clean: bool, route: tuple[str, str, BodyMaker | None], data: st.DataObject) -> None:
        method, template, maker = route
        p = Pick(data.draw, clean)
        method = p(st.just(method), st.sampled_from(OTHER_METHODS))
        names = PLACEHOLDER.findall(template)
        segments = {name: p(st.just(Victim(name)), id_segment(name)) for name in names}
        query = p(CLEAN_QUERY, query_string())
        body = api_body(p, maker)
        if_match = p(st.sampled_from([None, "*"] + [Victim(n, "version") for n in names]), IF_MATCH)
        question = None
        if template.endswith("/questions") and method == "DELETE":
            question = p(st.just(Victim("entry", "question")), TEXT)
        made: dict[str, dict[str, str]] = {}
        segments = world.resolve(segments, made)
        url = "/admin/api" + template.format(**{k: str(v) for k, v in segments.items()})
        if question is not None:
            query = "question=" + _quote(world.resolve(question, made))
        headers = dict(AUTH)
        if if_match is not None:
            headers["If-Match"] = world.resolve(if_match, made)
        kw: dict[str, Any] = {"headers": headers, "query_string": query}
        if "json_value" in body:
            value = world.resolve(body["json_value"], made)
            kw["data"] = encode_json(value, body["ascii"])
            kw["content_type"] = body["content_type"]
        elif "data" in body:
            kw["data"] = body["data"]
            kw["content_type"] = body["content_type"]
        send_checked(client, world, errors, method, url, check_api, **kw)

    run("api", app, one)


def test_fuzz_admin_api_auth(app, world, errors) -> None:  # type: ignore[no-untyped-def]
    """Wrong, odd and missing credentials, each from its own address (the lockout is per
    address): a 401/403/404/429 with a JSON reason, never a 500."""
    client = app.test_client()
    addresses = itertools.count(1)

    @given(
        route=st.sampled_from(API_ROUTES),
        header=st.one_of(
            st.none(),
            st.just(f"Bearer {ADMIN_TOKEN}"),
            st.builds(lambda t: f"Bearer {t}", HEADER_TEXT),
            st.builds(
                lambda s, t: f"{s} {t}",
                st.sampled_from(["bearer", "BEARER", "Basic", "", "Token"]),
                HEADER_TEXT,
            ),
            HEADER_TEXT,
        ),
    )
    def one(route: tuple[str, str, BodyMaker | None], header: str | None) -> None:
        method, template, _ = route
        url = "/admin/api" + PLACEHOLDER.sub(str(SAFE_ID), template)
        headers = {} if header is None else {"Authorization": header}
        n = next(addresses)
        environ = {"REMOTE_ADDR": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}
        resp = send_checked(
            client,
            world,
            errors,
            method,
            url,
            check_api,
            headers=headers,
            environ_base=environ,
            json={},
        )
        if header != f"Bearer {ADMIN_TOKEN}":
            assert resp.status_code in (401, 403, 429), (header, resp.status_code)

    run("api_auth", app, one, halves=False)


# -- the console -------------------------------------------------------------------------------

DONE_WORDS = ["created", "saved", "deleted", "exists", "cleared", "window", "forgotten"]
DONE_WORDS += ["taught", "attached", "dismissed", "1", "again", "added", "removed"]
CLEAN_QUERY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "page": st.integers(1, 3).map(str),
    "sort": st.sampled_from(["newest", "count", "grouped"]),
    "done": st.sampled_from(DONE_WORDS),
    "saved": st.sampled_from(DONE_WORDS),
    "n": st.integers(1, 5).map(str),
    "entry": st.just(Victim("entry")),
    "q": st.text(max_size=6),
    "format": st.sampled_from(["csv", "jsonl", "txt", "xlsx"]),
    "undone": st.text(max_size=6),
    "openid": st.just(Victim("openid")),
    "group": st.just("1"),
    "view": st.just("grouped"),
    "next": st.sampled_from(["/admin/knowledge", "/admin/unanswered?sort=grouped", ""]),
}
CONSOLE_PAGES: list[tuple[str, list[str]]] = [
    ("/admin/", []),
    ("/admin/unanswered", ["page", "sort", "done", "n", "entry"]),
    ("/admin/knowledge", ["page", "q", "done"]),
    ("/admin/knowledge/search.json", ["q"]),
    ("/admin/knowledge/{entry}", ["saved"]),
    ("/admin/knowledge/new", []),
    ("/admin/knowledge/export", ["format"]),
    ("/admin/synonyms", ["page", "q", "done"]),
    ("/admin/learned", ["page", "undone"]),
    ("/admin/llm", ["page", "openid", "entry"]),
    ("/admin/llm/{llm}/promote", []),
    ("/admin/unanswered/{unanswered}/answer", ["group", "view"]),
    ("/admin/unanswered/{unanswered}/attach", ["q", "group", "view"]),
    ("/admin/conversations", ["page", "done"]),
    ("/admin/conversations/{openid}", ["done"]),
    ("/admin/import", []),
    ("/admin/import/{job}", []),
    ("/admin/import/{job}/status", []),
    ("/admin/flows", []),
    ("/admin/login", ["next"]),
]

Form = list[tuple[str, Any]]
FormMaker = Callable[[Pick], Form]
GOOD_LINES = st.lists(GOOD_QUESTION, min_size=1, max_size=3).map("\n".join)
ANY_LINES = st.lists(TEXT, max_size=3).map("\n".join)
FORM_LANGUAGE = st.sampled_from(["", "zh", "en", "th", "tl", "ja"])
GOOD_ROUNDS = st.one_of(st.just(""), st.integers(1, 50).map(str))


def _ids(p: Pick, name: str, kind: str) -> Form:
    ids = p(st.lists(st.just(Victim(kind)), max_size=1), st.lists(TEXT, max_size=2))
    return [(name, i) for i in ids]


def _view(p: Pick) -> Form:
    return [
        ("view", v) for v in p(st.lists(st.just("grouped"), max_size=1), st.lists(TEXT, max_size=1))
    ]


def _teach_form(p: Pick) -> Form:
    form: Form = [("answer", p(GOOD_ANSWER, TEXT))]
    if p.draw(st.booleans()):
        form.append(("questions", p(GOOD_LINES, ANY_LINES)))
    return form + _ids(p, "similar", "unanswered2") + _ids(p, "offered", "unanswered2") + _view(p)


def _promote_form(p: Pick) -> Form:
    form: Form = []
    if p.draw(st.booleans()):
        form.append(("question", p(GOOD_QUESTION, TEXT)))
    if p.draw(st.booleans()):
        form.append(("answer", p(GOOD_ANSWER, TEXT)))
    return form


CONSOLE_FORMS: list[tuple[str, FormMaker]] = [
    (
        "/admin/knowledge/{entry}",
        lambda p: [
            ("questions", p(GOOD_LINES, ANY_LINES)),
            ("answer", p(GOOD_ANSWER, TEXT)),
            ("language", p(FORM_LANGUAGE, TEXT)),
            ("version", p(st.just(Victim("entry", "version")), TEXT)),
        ],
    ),
    ("/admin/knowledge/{entry}/questions", lambda p: [("new_questions", p(GOOD_LINES, ANY_LINES))]),
    (
        "/admin/knowledge/{entry}/questions/remove",
        lambda p: [("question", p(st.just(Victim("entry", "question")), TEXT))],
    ),
    (
        "/admin/knowledge/{entry}/delete",
        lambda p: [("version", p(st.just(Victim("entry", "version")), TEXT))],
    ),
    (
        "/admin/knowledge/new",
        lambda p: [
            ("questions", p(GOOD_LINES, ANY_LINES)),
            ("answer", p(GOOD_ANSWER, TEXT)),
            ("language", p(FORM_LANGUAGE, TEXT)),
        ],
    ),
    (
        "/admin/synonyms",
        lambda p: [("words", p(st.lists(GOOD_WORD, min_size=2, max_size=3).map(" ".join), TEXT))],
    ),
    (
        "/admin/synonyms/{group}",
        lambda p: [
            ("words", p(st.lists(GOOD_WORD, min_size=2, max_size=3).map("，".join), TEXT)),
            ("version", p(st.just(Victim("group", "version")), TEXT)),
        ],
    ),
    (
        "/admin/synonyms/{group}/delete",
        lambda p: [("version", p(st.just(Victim("group", "version")), TEXT))],
    ),
    ("/admin/learned/{learned}/undo", lambda p: []),
    ("/admin/unanswered/{unanswered}/answer", _teach_form),
    (
        "/admin/unanswered/{unanswered}/attach",
        lambda p: (
            [("entry_id", p(st.just(Victim("entry")), TEXT))]
            + _ids(p, "similar", "unanswered2")
            + _view(p)
        ),
    ),
    (
        "/admin/unanswered/{unanswered}/dismiss",
        lambda p: _ids(p, "similar", "unanswered2") + _view(p),
    ),
    ("/admin/llm/{llm}/promote", _promote_form),
    ("/admin/conversations/{openid}/window", lambda p: [("history_rounds", p(GOOD_ROUNDS, TEXT))]),
    ("/admin/conversations/{openid}/clear", lambda p: []),
    ("/admin/conversations/{openid}/forget", lambda p: []),
    ("/admin/import/{job}/commit", lambda p: [("skip_bad", p(st.sampled_from(["1", "0"]), TEXT))]),
    ("/admin/import/{job}/discard", lambda p: []),
]
FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/json",
    "",
]


def encode_form(pairs: Form) -> bytes:
    """A urlencoded body as a browser sends it (a lone surrogate as the invalid UTF-8 bytes
    some clients produce)."""
    return "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in pairs).encode("ascii")


HEADERS = ["question", "questions", "问题", "answer", "答案", "similar", "相似问法", "language"]
HEADERS += ["语言", "Question ", "ANSWER", "", "id", "备注"]


def _xlsx_safe(value: Any) -> Any:
    """What openpyxl can write (no lone surrogates, no control characters)."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", _no_surrogates(value))
    return value


CELL = st.one_of(
    st.none(),
    st.booleans(),
    INTS.filter(lambda i: abs(i) < 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(),
    st.dates(),
    st.sampled_from(["=1+1", "=A1", "#N/A", "0012", "TRUE"]),
    TEXT,
)


@st.composite
def xlsx_file(draw: Callable[..., Any]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = _xlsx_safe(draw(st.sampled_from(["Sheet1", "问答", "x" * 31])))
    sheet.append([_xlsx_safe(h) for h in draw(st.lists(st.sampled_from(HEADERS), max_size=5))])
    for row in draw(st.lists(st.lists(CELL, max_size=5), max_size=4)):
        sheet.append([_xlsx_safe(v) for v in row])
    if draw(st.booleans()):
        sheet["A2"].number_format = "0000"
    if draw(st.booleans()):
        book.create_sheet("第二个").append(["question", "answer"])
    out = _bytes_io(b"")
    book.save(out)
    return out.getvalue()


def _jsonl_line(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


JSONL_OBJECT = st.fixed_dictionaries(
    {},
    optional={
        "question": mostly(GOOD_QUESTION, JSON_VALUE),
        "questions": mostly(GOOD_QUESTIONS, JSON_VALUE),
        "similar": mostly(st.lists(GOOD_QUESTION, max_size=2), JSON_VALUE),
        "answer": mostly(GOOD_ANSWER, JSON_VALUE),
        "language": mostly(GOOD_LANGUAGE, JSON_VALUE),
        "id": JSON_VALUE,
    },
)
CSV_CELL = st.one_of(
    GOOD_QUESTION, TEXT, st.sampled_from(['"', '""', "a,b", "=cmd|' /C calc'!A0", "'x"])
)


def _csv_row(cells: list[str]) -> str:
    return ",".join('"' + c.replace('"', '""') + '"' if "," in c or '"' in c else c for c in cells)


@st.composite
def odd_file(draw: Callable[..., Any]) -> tuple[bytes, str]:
    """A file of each importable kind with odd content: (bytes, extension)."""
    kind = draw(st.sampled_from(["txt", "csv", "jsonl", "xlsx", "bytes"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))

    def encoded(text: str) -> bytes:
        return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")

    if kind == "txt":
        lines = draw(
            st.lists(
                st.one_of(
                    st.builds(lambda t: f"Q: {t}", mostly(GOOD_QUESTION, TEXT)),
                    st.builds(lambda t: f"A: {t}", mostly(GOOD_ANSWER, TEXT)),
                    st.sampled_from(
                        ["Q:", "A:", "#", "", "q：问题", "A：答案", "L: en", "Language: xx"]
                    ),
                    TEXT,
                ),
                max_size=8,
            )
        )
        return encoded("\n".join(lines)), "txt"
    if kind == "csv":
        delimiter = draw(st.sampled_from([",", "\t", ";"]))
        header = draw(st.lists(st.sampled_from(HEADERS), max_size=4))
        rows = draw(st.lists(st.lists(CSV_CELL, max_size=4), max_size=4))
        text = "\n".join(_csv_row(r).replace(",", delimiter) for r in [header, *rows])
        return encoded(text), draw(st.sampled_from(["csv", "tsv", "txt"]))
    if kind == "jsonl":
        values = draw(st.lists(mostly(JSONL_OBJECT, JSON_VALUE), max_size=4))
        ascii_only = draw(st.booleans())
        lines = [_jsonl_line(v, ascii_only) for v in values]
        lines += draw(
            st.lists(
                st.sampled_from(["{", "[]", "null", "{}", '{"a":' * 2000, "9" * 5000]), max_size=1
            )
        )
        return "\n".join(lines).encode("utf-8", "surrogatepass"), "jsonl"
    if kind == "xlsx":
        return draw(xlsx_file()), "xlsx"
    raw = draw(
        st.one_of(
            st.binary(max_size=200),
            st.builds(lambda b: b"PK\x03\x04" + b, st.binary(max_size=100)),
            st.sampled_from([b"", b"   \n", b"\xef\xbb\xbf", b"\xff\xfeQ\x00:\x00", b"Q:\nA:\n"]),
        )
    )
    return raw, draw(st.sampled_from(["txt", "csv", "jsonl", "xlsx"]))


@st.composite
def upload(draw: Callable[..., Any], clean: bool) -> tuple[bytes, str, str]:
    """(file content, file name, the form's format) for /admin/import."""
    rows = draw(st.lists(st.tuples(GOOD_QUESTION, GOOD_ANSWER), min_size=1, max_size=3))
    fmt = draw(st.sampled_from(["txt", "csv", "jsonl"]))
    if fmt == "txt":
        content = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in rows).encode()
    elif fmt == "csv":
        content = ("question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in rows)).encode()
    else:
        lines = (json.dumps({"question": q, "answer": a}, ensure_ascii=False) for q, a in rows)
        content = "\n".join(lines).encode()
    name, form_format = f"faq.{fmt}", draw(st.sampled_from(["", fmt]))
    if clean:
        return content, name, form_format
    content, fmt = draw(mostly(odd_file(), st.just((content, fmt))))
    name = f"faq.{fmt}"
    odd_names = st.sampled_from(
        ["a.xls", "a.xlsx", "a.CSV", "a", ".txt", "../../etc/passwd", "C:\\x\\a.csv"]
    )
    name = draw(mostly(st.just(name), st.one_of(odd_names, st.text(max_size=30))))
    odd_format = st.one_of(st.sampled_from(["xlsx", "xls", "CSV"]), TEXT.map(_no_surrogates))
    form_format = draw(mostly(st.sampled_from(["", fmt]), odd_format))
    return content, name, form_format


def _no_surrogates(text: str) -> str:
    """The test client's multipart encoder cannot send a lone surrogate (no client can)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def check_console(resp: Any, method: str, what: object) -> None:
    body = resp.get_data().decode("utf-8", "replace")
    assert resp.status_code < 500, (what, resp.status_code, body[:500])
    no_traceback(body, what)
    if 300 <= resp.status_code < 400:
        target = resp.headers.get("Location", "")
        assert target.startswith(("/admin", "http://localhost/admin")), (
            "redirected out",
            what,
            target,
        )
    if resp.status_code >= 400 and method != "HEAD":
        if resp.is_json:
            assert resp.get_json().get("error"), ("4xx without a reason", what, body[:300])
        else:
            assert re.search(r'role="alert"[^>]*>\s*\S', body), (
                "4xx without a reason",
                what,
                body[:2000],
            )


def console_client(app: Any, world: World) -> Any:
    client = app.test_client()
    resp = login(client, token=ADMIN_TOKEN)
    assert resp.status_code == 303, resp.status_code
    world.client = client
    return client


def test_fuzz_console(app, world, errors) -> None:  # type: ignore[no-untyped-def]
    """Every console page with odd query strings, every form with odd fields (logged in,
    with the session's CSRF token, or without it, or a wrong one) and content types, and
    uploads of odd files of each importable kind, checked and then imported."""
    client = console_client(app, world)
    token = csrf(client)

    @given(data=st.data())
    def one(clean: bool, data: st.DataObject) -> None:
        p = Pick(data.draw, clean)
        kind = data.draw(st.sampled_from(["page", "form", "form", "upload"]))
        made: dict[str, dict[str, str]] = {}
        if kind == "upload":
            content, name, form_format = data.draw(upload(clean))
            form = {"csrf_token": token, "format": form_format, "file": (_bytes_io(content), name)}
            resp = send_checked(
                client,
                world,
                errors,
                "POST",
                "/admin/import",
                check_console,
                data=form,
                content_type="multipart/form-data",
            )
            if resp.status_code == 303:
                job = resp.headers["Location"].rsplit("/", 1)[1]
                wait_for_job(client, job)
                assert not errors.take(), ("the check of an upload failed", name, content[:300])
                send_checked(client, world, errors, "GET", f"/admin/import/{job}", check_console)
                if data.draw(st.booleans()):
                    commit = {"csrf_token": token, "skip_bad": "1"}
                    send_checked(
                        client,
                        world,
                        errors,
                        "POST",
                        f"/admin/import/{job}/commit",
                        check_console,
                        data=commit,
                    )
                    wait_for_job(client, job)
                    assert not errors.take(), ("an import failed", name, content[:300])
            return
        if kind == "page":
            template, names = data.draw(st.sampled_from(CONSOLE_PAGES))
            method = p(st.just("GET"), st.sampled_from(["HEAD", "POST", "PUT", "DELETE"]))
            pairs = [
                (n, p(CLEAN_QUERY_VALUES[n], QUERY_VALUES))
                for n in names
                if data.draw(st.booleans())
            ]
            if not clean:
                pairs += data.draw(
                    st.lists(
                        st.tuples(
                            st.sampled_from(QUERY_NAMES + list(CLEAN_QUERY_VALUES)), QUERY_VALUES
                        ),
                        max_size=2,
                    )
                )
            fields: Form = [("csrf_token", token)]
            content_type = "application/x-www-form-urlencoded"
        else:
            template, maker = data.draw(st.sampled_from(CONSOLE_FORMS))
            method = p(st.just("POST"), st.sampled_from(["GET", "PUT", "DELETE", "PATCH"]))
            fields = maker(p)
            pairs = []
            if not clean:
                fields = data.draw(st.permutations(fields))
                fields += data.draw(st.lists(st.tuples(SHORT_TEXT, TEXT), max_size=2))
                if fields and data.draw(st.booleans()):
                    del fields[data.draw(st.integers(0, len(fields) - 1))]
            csrf_value = p(st.just(token), st.one_of(st.none(), TEXT, st.just(token.upper())))
            if csrf_value is not None:
                fields = [("csrf_token", csrf_value), *fields]
            content_type = p(st.just(FORM_TYPES[0]), st.sampled_from(FORM_TYPES))
        segments = {n: p(st.just(Victim(n)), id_segment(n)) for n in PLACEHOLDER.findall(template)}
        segments = world.resolve(segments, made)
        url = template.format(**{k: str(v) for k, v in segments.items()})
        query = "&".join(
            f"{_quote(str(n))}={_quote(str(v))}" for n, v in world.resolve(pairs, made)
        )
        body = encode_form(world.resolve(fields, made))
        send_checked(
            client,
            world,
            errors,
            method,
            url,
            check_console,
            query_string=query,
            data=body,
            content_type=content_type,
        )
        if "/import/" in url and url.endswith("/commit"):
            wait_for_job(client, url.split("/")[3])

    run("console", app, one)


NEXT_URLS = ["/admin/knowledge", "//evil.example", "https://evil.example/admin/", "/admin/login"]
NEXT_URLS += ["/admin/\r\nSet-Cookie: x=1", "javascript:alert(1)", "/admin/../wechat", "/\\evil"]


def test_fuzz_console_login(app, world, errors) -> None:  # type: ignore[no-untyped-def]
    """The login form (its CSRF pair, the token, where to go next), logging out, and the
    bearer token on console pages, each from an address of its own (the lockout is per
    address): a page with a reason or a redirect inside /admin, never a 500."""
    addresses = itertools.count(1)

    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        n = next(addresses)
        environ = {"REMOTE_ADDR": f"10.9.{n // 256 % 256}.{n % 256}"}
        client = app.test_client()
        next_url = data.draw(st.one_of(st.sampled_from(NEXT_URLS), TEXT))
        page = send_checked(
            client,
            world,
            errors,
            "GET",
            "/admin/login",
            check_console,
            query_string="next=" + _quote(next_url),
            environ_base=environ,
        )
        csrf_value = data.draw(
            st.one_of(st.just(csrf_of(page.text)), st.none(), TEXT.map(_no_surrogates))
        )
        token = data.draw(st.one_of(st.just(ADMIN_TOKEN), TEXT, st.just(ADMIN_TOKEN + " ")))
        form: Form = [("token", token), ("next", next_url)]
        if csrf_value is not None:
            form.insert(0, ("csrf_token", csrf_value))
        resp = send_checked(
            client,
            world,
            errors,
            "POST",
            "/admin/login",
            check_console,
            data=encode_form(form),
            content_type="application/x-www-form-urlencoded",
            environ_base=environ,
        )
        if resp.status_code == 303 and data.draw(st.booleans()):
            token_now = csrf(client, "/admin/knowledge")
            logout = [("csrf_token", data.draw(st.one_of(st.just(token_now), TEXT)))]
            send_checked(
                client,
                world,
                errors,
                "POST",
                "/admin/logout",
                check_console,
                data=encode_form(logout),
                content_type="application/x-www-form-urlencoded",
                environ_base=environ,
            )
        header = data.draw(st.one_of(st.none(), HEADER_TEXT, st.just(AUTH["Authorization"])))
        path = data.draw(st.sampled_from([p for p, _ in CONSOLE_PAGES if "{" not in p]))
        send_checked(
            app.test_client(),
            world,
            errors,
            "GET",
            path,
            check_console,
            headers={} if header is None else {"Authorization": header},
            environ_base=environ,
        )

    run("console_login", app, one, halves=False)


PREFIXES = ["/", "/admin/", "/admin/api/", "/admin/static/", "/wechat", "/healthz", "/livez"]
PREFIXES += ["/metrics", "/admin/api/knowledge/", "/admin/knowledge/", "/admin/import/"]


def test_fuzz_any_path(app, world, errors) -> None:  # type: ignore[no-untyped-def]
    """Any method on any path (authorised): a 404/405 in the API's JSON or the console's
    page, never a 500."""
    client = app.test_client()

    @given(
        method=st.sampled_from(OTHER_METHODS),
        prefix=st.sampled_from(PREFIXES),
        rest=st.lists(
            st.one_of(TEXT.map(_quote), st.sampled_from(["..", ".", "", "%2F", "1"])), max_size=3
        ),
    )
    def one(method: str, prefix: str, rest: list[str]) -> None:
        path = prefix + "/".join(guard_text(r) for r in rest)
        if path.startswith("//"):
            # the test client reads "//x" as a URL whose host is x, so it would never reach
            # the app as a path; the empty segment itself is covered by the test of "//" below
            path = "/" + path.lstrip("/")
        check = check_api if path.startswith("/admin/api/") else check_console
        if path.startswith("/admin/static/") or not path.startswith("/admin/"):
            check = check_plain
        send_checked(client, world, errors, method, path, check, headers=AUTH, data=b"x")

    run("any_path", app, one, halves=False)


def check_plain(resp: Any, method: str, what: object) -> None:
    body = resp.get_data().decode("utf-8", "replace")
    assert resp.status_code < 500 or resp.status_code == 503 and "/healthz" in str(what), (
        what,
        resp.status_code,
        body[:500],
    )
    no_traceback(body, what)


# -- /wechat -----------------------------------------------------------------------------------

WX_OPENIDS = ["o_fuzz_a", "o_fuzz_b", TEACHER]
CHAT_ENTRIES = [
    (["营业时间", "你们几点开门"], "每天 9:00–21:00。"),
    (["怎么退款", "退款流程"], "在订单页点「退款」。"),
]
CHAT_WORDS = [
    "你好",
    "学习",
    "取消",
    "人工",
    "天气",
    "天气 北京",
    "北京天气怎么样",
    "点歌 晴天",
    "听歌",
    "语言 en",
    "语言 xx",
    "language ja",
    "是",
    "否",
    "覆盖",
    "1",
    "2",
    "3",
    "0",
    "99",
    "绑定手机",
    "13800138000",
    "123456",
    "查充值",
    "202501150830123456",
    "营业时间",
    "几点开门",
    "怎么退款",
    "退款",
    "help",
    "?",
    "？？",
    "😀",
    " ",
    "\u3000",
    "teach",
    "新问题 1",
    "新答案",
]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "scancode_push"]
EVENTS += ["TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH", "pic_sysphoto", "location_select"]
EVENT_KEYS = ["", "qrscene_42", "qrscene_", "qrscene_x", "42", "MENU_KEY", "http://example.com/a"]
FIELD_NAMES = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content"]
FIELD_NAMES += ["Event", "EventKey", "MediaId", "PicUrl", "Recognition", "Location_X"]
FIELD_NAMES += ["Location_Y", "Latitude", "Longitude", "Label", "Title", "Url", "Encrypt"]
XML_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
COORD = st.floats(-90, 90, allow_nan=False).map(lambda f: round(f, 6))
ANY_NUMBERISH = st.one_of(
    INTS, FLOATS, TEXT, st.sampled_from(["", "1e3", " 12 ", "0x1F", "١٢", "-0"])
)
XML_TEXT = st.text(st.one_of(PRINTABLE, st.sampled_from("\t\n\r")), max_size=40)  # parses
MSG_IDS = itertools.count(7_000_000_000_000_000_000)


@st.composite
def wechat_fields(draw: Callable[..., Any], p: Pick, now: int) -> list[tuple[str, Any]]:
    """A WeChat message's fields, (name, value) in order; a value may be text, a number, a
    dict (nested elements) or a list (repeated elements)."""
    kinds = ["image", "voice", "video", "shortvideo", "location", "link", "event", "event"]
    kind = p(
        st.sampled_from(["text", "text", "text", *kinds]),
        st.sampled_from(["TEXT", "", "miniprogrampage", "x" * 300]),
    )
    fields: list[tuple[str, Any]] = [
        ("ToUserName", p(st.just("gh_fuzz"), TEXT)),
        (
            "FromUserName",
            p(st.sampled_from(WX_OPENIDS), st.one_of(TEXT, st.sampled_from(WX_OPENIDS))),
        ),
        ("CreateTime", p(st.just(now), ANY_NUMBERISH)),
        ("MsgType", kind),
    ]
    if kind != "event":
        fields.append(("MsgId", p(st.just(next(MSG_IDS)), ANY_NUMBERISH)))
    words = st.one_of(st.sampled_from(CHAT_WORDS), GOOD_QUESTION)
    if kind in ("text", "TEXT"):
        fields.append(("Content", p(words, st.one_of(XML_TEXT, XML_TEXT, TEXT, LONG_TEXT))))
    elif kind == "voice":
        fields += [("MediaId", "m"), ("Format", "amr"), ("Recognition", p(words, XML_TEXT))]
    elif kind == "image":
        fields += [("PicUrl", p(st.just("http://127.0.0.1/a.jpg"), TEXT)), ("MediaId", "m")]
    elif kind in ("video", "shortvideo"):
        fields += [("MediaId", "m"), ("ThumbMediaId", "t")]
    elif kind == "location":
        fields += [
            ("Location_X", p(COORD, ANY_NUMBERISH)),
            ("Location_Y", p(COORD, ANY_NUMBERISH)),
            ("Scale", 15),
            ("Label", p(st.text(PRINTABLE, max_size=10), TEXT)),
        ]
    elif kind == "link":
        fields += [
            ("Title", p(words, TEXT)),
            ("Description", ""),
            ("Url", p(st.just("http://a.cn"), TEXT)),
        ]
    elif kind == "event":
        event = p(st.sampled_from(EVENTS), TEXT)
        fields += [("Event", event), ("EventKey", p(st.sampled_from(EVENT_KEYS), TEXT))]
        if event == "LOCATION" or not p.clean:
            fields += [
                ("Latitude", p(COORD, ANY_NUMBERISH)),
                ("Longitude", p(COORD, ANY_NUMBERISH)),
                ("Precision", "30"),
            ]
    if p.clean:
        return fields
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "add", "replace", "nest", "repeat"]))
        at = draw(st.integers(0, len(fields)))
        name = draw(st.one_of(st.sampled_from(FIELD_NAMES), XML_NAME))
        if action == "drop" and fields:
            del fields[min(at, len(fields) - 1)]
        elif action == "add":
            fields.insert(at, (name, draw(st.one_of(TEXT, INTS))))
        elif action == "replace" and fields:
            i = min(at, len(fields) - 1)
            fields[i] = (fields[i][0], draw(st.one_of(TEXT, ANY_NUMBERISH)))
        elif action == "nest":
            fields.insert(at, (name, {draw(XML_NAME): draw(TEXT), "b": {"c": draw(TEXT)}}))
        elif action == "repeat" and fields:
            i = min(at, len(fields) - 1)
            fields.insert(i, fields[i])
    return fields


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_fields(fields: list[tuple[str, Any]], style: str) -> str:
    parts = []
    for name, value in fields:
        if isinstance(value, dict):
            inner = render_fields(list(value.items()), style)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            inner = str(value)
        else:
            value = str(value)
            inner = (
                _cdata(value)
                if style == "cdata"
                else _escape(value)
                if style == "escaped"
                else value
            )
        parts.append(f"<{name}>{inner}</{name}>")
    return "".join(parts)


BODY_MUTATIONS = [
    "none",
    "declaration",
    "bogus-encoding",
    "doctype",
    "external",
    "bom",
    "truncate",
    "deep",
    "garbage",
    "two-roots",
    "root",
    "namespace",
    "comment",
    "huge",
    "empty",
    "bytes",
]


@st.composite
def xml_body(draw: Callable[..., Any], p: Pick, now: int) -> bytes:
    fields = draw(wechat_fields(p, now))
    style = p(st.just("cdata"), st.sampled_from(["cdata", "escaped", "raw"]))
    xml = f"<xml>{render_fields(fields, style)}</xml>"
    mutation = p(st.just("none"), st.sampled_from(BODY_MUTATIONS))
    if mutation == "declaration":
        enc = draw(st.sampled_from(["utf-8", "UTF-8", "gbk", "latin-1", "ascii", "utf-16"]))
        xml = f'<?xml version="1.0" encoding="{enc}"?>' + xml
    elif mutation == "bogus-encoding":
        xml = '<?xml version="1.0" encoding="bogus-Ω"?>' + xml
    elif mutation == "doctype":
        xml = '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>' + xml.replace(
            "</xml>", "<Content>&b;</Content></xml>"
        )
    elif mutation == "external":
        xml = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + xml.replace(
            "</xml>", "<Content>&x;</Content></xml>"
        )
    elif mutation == "truncate":
        xml = xml[: draw(st.integers(0, max(0, len(xml) - 1)))]
    elif mutation == "deep":
        depth = draw(st.sampled_from([7, 8, 9, 50, 5000]))
        xml = xml.replace(
            "</xml>", "<Content>" + "<a>" * depth + "x" + "</a>" * depth + "</Content></xml>"
        )
    elif mutation == "garbage":
        xml += draw(st.sampled_from(["x", "<xml/>", "\x00", "<!-- -->", "</xml>"]))
    elif mutation == "two-roots":
        xml += xml
    elif mutation == "root":
        xml = "<XML>" + xml[5:-6] + "</XML>"
    elif mutation == "namespace":
        xml = '<x:xml xmlns:x="urn:x">' + xml[5:-6] + "</x:xml>"
    elif mutation == "comment":
        xml = xml.replace("<MsgType>", "<!-- c --><?pi x?><MsgType>", 1)
    elif mutation == "huge":
        size = len(xml.encode("utf-8", "surrogatepass"))
        pad = draw(st.sampled_from([64 * 1024 - size - 30, 64 * 1024, 200_000]))
        xml = xml.replace("</xml>", "<Pad>" + "x" * max(0, pad) + "</Pad></xml>")
    elif mutation == "empty":
        xml = draw(st.sampled_from(["", " ", "\n\t", "<xml/>", "<xml></xml>"]))
    data = xml.encode("utf-8", "surrogatepass")
    if mutation == "bom":
        data = b"\xef\xbb\xbf" + data
    elif mutation == "bytes":
        data = draw(
            st.one_of(
                st.binary(max_size=100),
                st.builds(
                    lambda b: data.replace(b"</xml>", b + b"</xml>"),
                    st.binary(min_size=1, max_size=8),
                ),
            )
        )
    elif mutation == "declaration" and "utf-16" in xml[:40]:
        data = xml.encode("utf-16", "surrogatepass")
    return data


def seal(inner: bytes) -> str:
    """``inner`` encrypted as WeChat does (any bytes: invalid UTF-8 too)."""
    key = aes_key(KEY)
    plain = b"0123456789abcdef" + struct.pack(">I", len(inner)) + inner + APPID.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def signed(now: int, nonce: str, encrypted: str | None = None) -> dict[str, str]:
    params = {
        "signature": signature(WX_TOKEN, str(now), nonce),
        "timestamp": str(now),
        "nonce": nonce,
    }
    if encrypted is not None:
        params["encrypt_type"] = "aes"
        params["msg_signature"] = signature(WX_TOKEN, str(now), nonce, encrypted)
    return params


def envelope(encrypted: str, compat_fields: bytes = b"") -> bytes:
    inner = (
        compat_fields[5:-6]
        if compat_fields.startswith(b"<xml>") and compat_fields.endswith(b"</xml>")
        else b""
    )
    return (
        b"<xml><ToUserName><![CDATA[gh_fuzz]]></ToUserName>"
        + inner
        + f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    )


def wechat_check(mode: str) -> Callable[[Any, str, object], None]:
    reader = WeChatSimulator(WX_TOKEN, APPID, KEY, "safe" if mode != "plain" else "plain")

    def check(resp: Any, method: str, what: object) -> None:
        body = resp.get_data().decode("utf-8", "replace")
        assert resp.status_code < 500, (what, resp.status_code, body[:500])
        no_traceback(body, what)
        if resp.status_code >= 400:
            assert body.strip(), ("4xx without a reason", what)
            return
        if method != "POST":
            return
        try:
            reply = reader.read_reply(body)
        except SimulatorError as exc:
            raise AssertionError(("unreadable reply", what, str(exc), body[:300])) from None
        content = getattr(reply, "content", "")
        assert content != APOLOGY, ("the apology: something failed inside", what)
        no_traceback(content, what)

    return check


@pytest.fixture
def chat_entries(app, world) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        for questions, answer in CHAT_ENTRIES:
            writer.create_entry(conn, questions, answer, now=1.0, source="api")


@pytest.mark.usefixtures("chat_entries")
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_fuzz_wechat_messages(app, world, errors, mode: str) -> None:  # type: ignore[no-untyped-def]
    """The message inside a valid request (signed; in safe mode encrypted, in the safe or the
    compatible envelope): the parser and the dialogue are reached."""
    client = app.test_client()
    check = wechat_check(mode)
    clock = app.extensions["wxbot.clock"]
    nonces = itertools.count()

    @given(data=st.data())
    def one(clean: bool, data: st.DataObject) -> None:
        p = Pick(data.draw, clean)
        now = int(clock())
        xml = data.draw(xml_body(p, now))
        nonce = f"n{next(nonces)}"
        if mode == "plain":
            params, body = signed(now, nonce), xml
        else:
            encrypted = seal(xml)
            params = signed(now, nonce, encrypted)
            compat = data.draw(st.booleans()) and xml.startswith(b"<xml>")
            body = envelope(encrypted, xml if compat else b"")
        send_checked(
            client,
            world,
            errors,
            "POST",
            "/wechat",
            check,
            query_string=params,
            data=body,
            content_type="text/xml",
        )

    run("wechat", app, one)


PHONE = st.one_of(
    st.sampled_from(["13800138000", "138 0013 8000", "+86 13800138000", "1380013800"]),
    st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
)
SCRIPTS: list[list[Any]] = [
    ["学习", GOOD_QUESTION, GOOD_ANSWER],
    ["学习", GOOD_QUESTION, GOOD_ANSWER, st.sampled_from(["是", "否", "取消"])],
    ["teach", "营业时间", GOOD_ANSWER, st.sampled_from(["是", "否", "覆盖", "嗯"])],
    ["学习", "取消"],
    ["绑定手机", PHONE, st.from_regex(r"\d{4,6}", fullmatch=True)],
    ["绑定手机", "abc", "123", "人工"],
    ["查充值", st.one_of(st.just("202501150830123456"), st.from_regex(r"\d{18}", fullmatch=True))],
    ["我要查充值，订单号 123456789012345678"],
    ["天气", st.sampled_from(["北京", "上海", "火星", ""])],
    ["点歌 晴天", "1"],
    [st.sampled_from(["语言 en", "语言 ja", "language th", "语言 xx"]), "营业时间", "怎么退款"],
    ["营业时", st.sampled_from(["1", "2", "0", "9", "不是"])],
    ["退款", st.sampled_from(["1", "2", "都不是"])],
    ["人工", "你好"],
]


def test_fuzz_wechat_conversations(app, world, errors, chat_entries) -> None:  # type: ignore[no-untyped-def]
    """Whole conversations in safe mode (teaching, binding a phone, a recharge query, the
    weather, did-you-mean picks, the language, a hand-off), with words swapped for odd text
    in the fuzzed half: the dialogue's states are reached, every answer is a reply."""
    client = app.test_client()
    check = wechat_check("safe")
    clock = app.extensions["wxbot.clock"]
    sim = WeChatSimulator(WX_TOKEN, APPID, KEY, "safe", clock=clock)
    users = itertools.count()

    @given(script=st.sampled_from(SCRIPTS), data=st.data())
    def one(clean: bool, script: list[Any], data: st.DataObject) -> None:
        p = Pick(data.draw, clean)
        openid = TEACHER if script[0] in ("学习", "teach") else f"o_fuzz_talk_{next(users) % 7}"
        for step in script:
            good = st.just(step) if isinstance(step, str) else step
            text = p(
                good,
                st.one_of(XML_TEXT, TEXT.map(_no_surrogates), LONG_TEXT.map(lambda t: t[:3000])),
            )
            params, body = sim.sign(sim.text(text, openid))
            send_checked(
                client,
                world,
                errors,
                "POST",
                "/wechat",
                check,
                query_string=params,
                data=body.encode("utf-8", "surrogatepass"),
                content_type="text/xml",
            )

    run("conversations", app, one)


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_fuzz_wechat_query(app, world, errors, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Bad, missing, doubled and odd signature, timestamp, nonce, encrypt_type and echostr
    parameters, on POST (a message) and GET (URL verification): a 4xx with a reason."""
    client = app.test_client()
    check = wechat_check(mode)
    clock = app.extensions["wxbot.clock"]
    nonces = itertools.count()
    names = [
        "signature",
        "timestamp",
        "nonce",
        "encrypt_type",
        "msg_signature",
        "echostr",
        "openid",
    ]

    @given(method=st.sampled_from(["POST", "GET"]), data=st.data())
    def one(method: str, data: st.DataObject) -> None:
        now = int(clock())
        nonce = f"n{next(nonces)}"
        sim = WeChatSimulator(WX_TOKEN, APPID, KEY, mode, clock=clock)
        xml = sim.build_xml(sim.text(data.draw(st.sampled_from(CHAT_WORDS)), "o_fuzz_q")).encode()
        echostr = data.draw(mostly(st.just("echo-1"), st.one_of(TEXT, LONG_TEXT)))
        if mode == "plain":
            params, body = signed(now, nonce), xml
            params["echostr"] = echostr
        else:
            encrypted = seal(xml if method == "POST" else echostr.encode("utf-8", "surrogatepass"))
            params, body = signed(now, nonce, encrypted), envelope(encrypted)
            params["echostr"] = encrypted if method == "GET" else echostr
            if method == "GET" and data.draw(st.booleans()):
                del params["signature"]
        pairs = list(params.items())
        for _ in range(data.draw(st.integers(1, 3))):
            name = data.draw(st.sampled_from(names))
            action = data.draw(st.sampled_from(["drop", "replace", "double", "odd"]))
            value = data.draw(
                st.one_of(
                    TEXT,
                    INTS.map(str),
                    st.sampled_from(
                        [
                            "",
                            "aes",
                            "AES",
                            "raw",
                            "RAW",
                            "des",
                            str(now + 10**6),
                            str(now - 301),
                            str(now + 299),
                        ]
                    ),
                )
            )
            if action == "drop":
                pairs = [(k, v) for k, v in pairs if k != name]
            elif action == "replace":
                pairs = [(k, value if k == name else v) for k, v in pairs]
            elif action == "double":
                pairs.insert(data.draw(st.integers(0, len(pairs))), (name, value))
            else:
                pairs.append((data.draw(SHORT_TEXT), value))
        query = "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in pairs)
        send_checked(
            client,
            world,
            errors,
            method,
            "/wechat",
            check,
            query_string=query,
            data=body if method == "POST" else None,
            content_type="text/xml",
        )

    run("wechat_query", app, one, halves=False)


# -- regressions the fuzzing found (plain tests, on both databases) ----------------------------


def test_an_empty_path_segment_is_a_404_not_a_redirect_to_another_thing(app) -> None:  # type: ignore[no-untyped-def]
    """``DELETE /admin/api/sessions//history`` (an empty openid) was Werkzeug's HTML 308 to
    ``/admin/api/sessions/history``: a client following it cleared the history of a user
    whose openid is "history"."""
    say(app.extensions["wxbot.bot"], "history", "你好")
    client = app.test_client()
    kept = client.get("/admin/api/sessions/history/history", headers=AUTH).get_json()
    resp = client.delete("/admin/api/sessions//history", headers=AUTH, follow_redirects=True)
    assert resp.status_code == 404, resp.status_code
    assert resp.is_json and resp.get_json()["error"]
    after = client.get("/admin/api/sessions/history/history", headers=AUTH).get_json()
    assert after["total_messages"] == kept["total_messages"] > 0
    page = client.get("/admin//knowledge", headers=AUTH)
    assert page.status_code == 404 and 'role="alert"' in page.text


@pytest.mark.parametrize("query", ["done=taught", "done=attached&n=3", "done=taught&entry=abc"])
def test_the_unanswered_page_with_a_done_notice_but_no_entry_is_not_a_500(app, query) -> None:  # type: ignore[no-untyped-def]
    """``/admin/unanswered?done=taught`` without ``entry`` (a hand-edited or cut URL) failed
    to build the notice's link to the entry: a 500."""
    client = app.test_client()
    login(client, token=ADMIN_TOKEN)
    resp = client.get(f"/admin/unanswered?{query}")
    assert resp.status_code == 200, resp.status_code
    assert "未答问题" in resp.text
    taught = client.get("/admin/unanswered?done=taught&entry=7&n=2")
    assert taught.status_code == 200 and "/admin/knowledge/7" in taught.text


def test_a_jsonl_number_too_long_for_python_is_a_bad_line_not_a_failed_import(app, errors) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    login(client, token=ADMIN_TOKEN)
    body = (
        b'{"question": "good one", "answer": "fine"}\n{"question": "q", "answer": '
        + b"9" * 5000
        + b"}\n"
    )
    data = {"csrf_token": csrf(client, "/admin/import"), "file": (_bytes_io(body), "faq.jsonl")}
    resp = client.post("/admin/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303
    job = resp.headers["Location"].rsplit("/", 1)[1]
    wait_for_job(client, job)
    assert client.get(f"/admin/import/{job}/status").get_json()["status"] == "checked"
    assert not errors.take(), "the check logged an exception"
