"""Semantic retrieval in the bot when the embeddings service misbehaves: the user still gets
the word matcher's answer (never the system-error apology), the vectors of questions
imported while the service was down are filled in once it is back, and vectors of another
dimension (the model behind the name changed) are not mixed with the stored ones."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests import fake_embeddings
from tests.fake_embeddings import FakeEmbeddings
from tests.helpers import content, say
from tests.test_semantic_hunt_client import Hostile, raw
from wxbot.dialog import words
from wxbot.qa import embeddings
from wxbot.qa.models import KbEmbedding

FAQ = (
    "question,answer\n"
    "ATM吞卡了怎么办,请拨打ATM上的服务电话登记，工作时间到网点领回。\n"
    "信用卡怎么申请,在手机银行「信用卡」页面在线申请。\n"
    "转账多久到账,行内实时到账。\n"
)
CONCEPTS = {"atm": "atm", "取款机": "atm", "吞卡": "eat", "吃了": "eat", "吃卡": "eat"}
QUESTION = "取款机把我的卡吃了"  # only the "model" knows it is the ATM entry's


@pytest.fixture
def fake() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings()
    server.concepts = CONCEPTS
    yield server
    server.close()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


def import_faq(app, tmp_path: Path, text: str = FAQ):  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    path = tmp_path / "bank.csv"
    path.write_text(text, encoding="utf-8")
    return app.test_cli_runner().invoke(kb, ["import", str(path)])


def stored(app) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """(model, bytes) of every stored vector."""
    with app.extensions["wxbot.engine"].connect() as conn:
        rows = conn.execute(select(KbEmbedding.model, func.length(KbEmbedding.vector)))
        return sorted((m, n) for m, n in rows)


def wait_for_job(semantic) -> None:  # type: ignore[no-untyped-def]
    assert semantic._busy.acquire(timeout=30)  # held by the job until it is done
    semantic._busy.release()


def test_a_query_answered_with_nonsense_gets_the_word_matchers_reply(
    make_app, fake, hostile, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """JSON nested thousands deep (a RecursionError in the parser) escaped the client: the
    user got the system-error apology instead of the word matcher's reply."""
    app = make_app(embedding_url=fake.url, embedding_model="m")
    assert import_faq(app, tmp_path).exit_code == 0
    bot = app.extensions["wxbot.bot"]
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")
    semantic = bot.deps.kb.semantic
    semantic.client.url = hostile.url + "/embeddings"
    hostile.answer = raw(200, b"[" * 100_000 + b"]" * 100_000)
    reply = content(say(bot, "o_u", QUESTION + "呢"))
    assert reply != words.APOLOGY, reply
    assert content(say(bot, "o_u", "转账多久到账呀")) == "行内实时到账。"


def test_vectors_missing_after_an_outage_are_filled_in_later(make_app, fake, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Imported while the service was down, the questions had no vector; the bot's
    background job failed too (still down) and was never tried again: "retrying later" in
    its log line, but only a later change of the knowledge started it."""
    fake.down = True
    app = make_app(embedding_url=fake.url, embedding_model="m")
    result = import_faq(app, tmp_path)
    assert result.exit_code == 0 and "embedding the questions failed" in result.output
    bot = app.extensions["wxbot.bot"]
    semantic = bot.deps.kb.semantic
    say(bot, "o_u", "你好，请问")  # this process notices the questions without vectors: fails
    wait_for_job(semantic)
    assert stored(app) == []
    fake.down = False
    say(bot, "o_u", "转账多久到账")  # too soon after the failure: not tried again yet
    wait_for_job(semantic)
    assert stored(app) == []
    semantic._paused_until = 0.0  # the pause after a failure is over
    semantic._last_failure = time.monotonic() - embeddings.RETRY_AFTER - 1  # (before the fix)
    say(bot, "o_u", "转账多久到账")  # any question asked
    wait_for_job(semantic)
    assert len(stored(app)) == 3
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")


def test_a_rate_limit_pauses_the_background_job_for_its_retry_after(
    make_app, fake, hostile, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    fake.down = True
    app = make_app(embedding_url=fake.url, embedding_model="m")
    import_faq(app, tmp_path)
    bot = app.extensions["wxbot.bot"]
    semantic = bot.deps.kb.semantic
    wait_for_job(semantic)
    semantic.client.url = hostile.url + "/embeddings"
    hostile.answer = raw(429, b"{}", Retry_After="240")
    semantic._paused_until = 0.0
    semantic.fill_in_background()
    wait_for_job(semantic)
    assert semantic._paused_until - time.monotonic() > 200


def test_a_new_dimension_under_the_same_model_name_is_not_mixed_in(
    make_app, fake, tmp_path, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The service behind WXBOT_EMBEDDING_MODEL changed (TEI restarted with another model):
    new questions got vectors of the new dimension beside the old ones under the same name,
    and every query was silently searched against nothing (dimensions differ)."""
    app = make_app(embedding_url=fake.url, embedding_model="m")
    import_faq(app, tmp_path)
    before = stored(app)
    assert len(before) == 3
    bot = app.extensions["wxbot.bot"]
    semantic = bot.deps.kb.semantic
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")
    monkeypatch.setattr(fake_embeddings, "DIM", 128)  # another model, the same name
    more = FAQ + "开户需要什么,身份证。\n"
    with caplog.at_level(logging.INFO):
        result = import_faq(app, tmp_path, more)
        assert result.exit_code == 0 and "added 1" in result.output
        assert "dimension" in result.output and "WXBOT_EMBEDDING_MODEL" in result.output
        assert stored(app) == before  # nothing of the new size stored beside the old
        say(bot, "o_u", QUESTION)
        wait_for_job(semantic)
    assert stored(app) == before
    assert any(
        "dimension" in r.getMessage() and "WXBOT_EMBEDDING_MODEL" in r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
    ), [r.getMessage() for r in caplog.records]


def test_a_new_model_name_embeds_everything_again(make_app, fake, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What the warning tells the operator to do works: vectors are kept per model name."""
    app = make_app(embedding_url=fake.url, embedding_model="m")
    import_faq(app, tmp_path)
    monkeypatch.setattr(fake_embeddings, "DIM", 128)
    app2 = make_app(embedding_url=fake.url, embedding_model="m-128")  # restarted so
    bot = app2.extensions["wxbot.bot"]
    wait_for_job(bot.deps.kb.semantic)  # it found no vector of "m-128": all embedded
    assert stored(app2) == [("m", 4 * 272)] * 3 + [("m-128", 4 * 144)] * 3
    say(bot, "o_u", "你好")  # the job's new version is read
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")
