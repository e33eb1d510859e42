"""Per-process containers stay bounded however many distinct users, texts, languages, event
names or failures a worker sees over weeks (benchmarks/soak_memory.py shows it end to end).

Each test feeds many more distinct keys than the bound and checks the container's size; no
timing. Those marked *regression* guard a bound that was already there.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from wxbot import metrics
from wxbot.config import Settings
from wxbot.dialog import words
from wxbot.dialog.answer_cache import MAX_ENTRIES, cache_lookups
from wxbot.dialog.daemon_pool import DaemonThreads
from wxbot.dialog.flow import Deferred
from wxbot.dialog.slow import BACKLOG_PER_WORKER, SlowPath
from wxbot.dialog.wechat_clock import MAX_SAMPLES, WeChatClock
from wxbot.flows.triggers import MEMO_ENTRIES, TriggerMatcher
from wxbot.i18n import catalog, has_translation, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Text
from wxbot.qa.text import get_analyzer
from wxbot.services.http import TTLCache
from wxbot.services.sms import ConsoleSender

CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(CJK, k=rng.randint(3, 12))) + str(i) for i in range(n)]


def message(i: int) -> Inbound:
    return Inbound(openid=f"o{i}", kind="text", text="天气 某地", msg_id=str(i), dedup_key=f"k{i}")


# --- Prometheus label sets ------------------------------------------------------------------


def test_event_names_a_request_makes_up_are_not_metric_series() -> None:
    """The ``type`` label came from the delivery's <Event>: 20,000 made-up event names were
    20,000 series, for the life of the worker (and in the multiprocess files)."""
    family = metrics._metrics()["messages"]
    for i in range(20_000):
        metrics.message(f"event:evt_{i:x}", "replied", 0.001)
        metrics.message(f"made-up-type-{i}", "replied", 0.001)
    types = {labels[0] for labels in family._metrics}
    assert len(types) <= len(metrics.MESSAGE_KINDS) + len(metrics.EVENTS) + 2
    assert {"event:other", "other"} <= types


def test_wechats_own_kinds_and_events_keep_their_label() -> None:
    assert metrics.kind_label("text") == "text"
    assert metrics.kind_label("event:subscribe") == "event:subscribe"
    assert metrics.kind_label("event:click") == "event:click"
    assert metrics.kind_label("event:templatesendjobfinish") == "event:templatesendjobfinish"
    assert metrics.kind_label("unknown") == "unknown"
    assert metrics.kind_label("event:" + "x" * 500) == "event:other"


# --- translations ---------------------------------------------------------------------------


def test_catalogues_are_kept_only_for_languages_with_a_file() -> None:
    """Every language name translate() was asked for got a catalogue kept forever."""
    catalog.reload_catalogs()
    files = len(list(catalog.LOCALE_DIR.glob("*/LC_MESSAGES/*.po")))
    for i in range(20_000):
        translate(words.APOLOGY, f"xx-{i}")
    assert len(catalog._catalogs) <= files
    assert translate(words.APOLOGY, "xx-1") == words.APOLOGY  # untranslated: the Chinese
    assert has_translation(words.APOLOGY, "en")  # a language with a file still loads
    assert len(catalog._catalogs) <= files


# --- slow work ------------------------------------------------------------------------------


class _Resumer:
    """What the slow path needs of the engine, without a database: the reply names what
    the work's result was."""

    def resume_deferred(
        self, msg: Inbound, deferred: Deferred, result: object, saved_version: int
    ) -> tuple[Reply, bool]:
        name = type(result).__name__ if isinstance(result, BaseException) else str(result)
        return Text(name), False

    def queue_late(self, openid: str, reply: Reply) -> None:
        raise AssertionError("nothing is late here")

    def localised(self, msg: Inbound, message: Any) -> str:
        return str(message)

    def forget_work(self, msg: Inbound) -> None:
        pass


def test_slow_work_queued_behind_a_hung_service_is_bounded() -> None:
    """A service that hangs while messages keep asking it queued their work (message,
    closure, future) without end: 2,000 messages, 2,000 queued jobs."""
    release = threading.Event()
    slow = SlowPath(None, Settings(), _Resumer(), workers=2)  # type: ignore[arg-type]
    bound = 2 * BACKLOG_PER_WORKER
    work = Deferred(work=lambda: release.wait(30) and "done", resume=lambda turn, r: r)
    try:
        pending = [slow.start(message(i), work, 1) for i in range(2_000)]
        assert len(slow._jobs) <= bound
        assert slow._pool._tasks.qsize() <= bound
        refused = [p.future.result(timeout=0) for p in pending[bound:]]  # answered at once
        assert {r.content for r in refused} == {"Overloaded"}  # type: ignore[union-attr]
    finally:
        release.set()
    accepted = [p.future.result(timeout=30) for p in pending[:bound]]
    assert {r.content for r in accepted} == {"done"}  # type: ignore[union-attr]
    slow.close(0)


def test_daemon_threads_never_outnumber_the_pool() -> None:
    """Regression: one thread per slow job would be a thread per message."""
    release = threading.Event()
    pool = DaemonThreads(3, "test-pool")
    before = threading.active_count()
    for _ in range(500):
        pool.submit(lambda: release.wait(30) and None)
    assert threading.active_count() - before <= 3
    release.set()


# --- memos and caches (regression) ----------------------------------------------------------


class _Kb:
    version = 1
    semantic = None

    def lookup(self, text: str, suggestions: int = 3, language: str | None = None) -> str:
        return text[::-1]


def test_answer_cache_keeps_at_most_its_entries() -> None:
    kb = cache_lookups(_Kb())
    for text in texts(MAX_ENTRIES * 3):
        kb.lookup(text)
    assert len(kb.lookup.memo) == MAX_ENTRIES


def test_trigger_decisions_keep_at_most_their_entries() -> None:
    matcher = TriggerMatcher([])
    for text in texts(MEMO_ENTRIES * 3):
        matcher.match(text)
    assert len(matcher._memo) == MEMO_ENTRIES


def test_service_caches_keep_at_most_their_entries() -> None:
    cache: TTLCache[str] = TTLCache(ttl=600)
    for i, text in enumerate(texts(cache.maxsize * 5)):
        cache.put((text, i), text)
    assert len(cache._data) == cache.maxsize


def test_wechat_clock_keeps_a_fixed_number_of_samples() -> None:
    clock = WeChatClock()
    for i in range(20_000):
        clock.age(1_800_000_000 + i, 1_800_000_000.5 + i)
    assert len(clock._samples) == MAX_SAMPLES


def test_console_sms_sender_remembers_a_fixed_number_of_codes() -> None:
    sender = ConsoleSender()
    for i in range(1_000):
        sender.send(f"138{i:08d}", "123456")
    assert len(sender.sent) == ConsoleSender.KEEP


def test_segmenting_new_words_does_not_grow_jiebas_dictionary() -> None:
    """jieba learns nothing from what it cuts (no add_word/suggest_freq anywhere in wxbot):
    the words its HMM made up for thousands of texts never seen before are still not in its
    dictionary afterwards."""
    analyzer = get_analyzer()
    dictionary = analyzer._cut.__self__  # the rjieba.Jieba it cuts with
    made_up = {w for text in texts(500) for w in analyzer._cut(text) if not dictionary.has_word(w)}
    assert made_up  # (the texts do make the HMM invent words)
    for text in texts(5_000):
        analyzer.query(text)
        analyzer.function_grams(text)
    assert not [w for w in made_up if dictionary.has_word(w)]


def test_a_worker_loads_no_spreadsheet_library_until_a_workbook_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """openpyxl, and the numpy and lxml it loads when installed, cost every worker ~18 MB for
    files only imports and exports read: a fresh process building the app and answering a
    question has none of them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from wxbot import create_app\n"
        "from wxbot.wechat.simulator import WeChatSimulator\n"
        f"app = create_app({{'database_url': 'sqlite:///{tmp_path}/w.sqlite3', 'token': 't',"
        " 'appid': 'wxappid'})\n"
        "from wxbot.migrations.schema import upgrade\n"
        "upgrade(app.extensions['wxbot.engine'])\n"
        "WeChatSimulator('t', 'wxappid').send(app.test_client(), '你好')\n"
        "print(sorted(m for m in ('openpyxl', 'numpy', 'lxml') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
