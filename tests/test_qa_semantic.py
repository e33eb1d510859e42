"""Optional semantic retrieval against a local fake embeddings server (the real wire format):
vectors stored on import and by the background job, fused with the lexical ranking, and a
slow or broken service costing nothing but the semantic half. SQLite and MySQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fake_embeddings import FakeEmbeddings
from tests.helpers import content, say
from wxbot.qa.models import KbEmbedding

FAQ = (
    "question,answer\n"
    "ATM吞卡了怎么办,请拨打ATM上的服务电话登记，工作时间到网点领回。\n"
    "信用卡怎么申请,在手机银行「信用卡」页面在线申请。\n"
    "转账多久到账,行内实时到账。\n"
)
# the fake "model" knows these mean the same thing; the lexical matcher cannot
CONCEPTS = {"atm": "atm", "取款机": "atm", "吞卡": "eat", "吃了": "eat", "吃卡": "eat"}
QUESTION = "取款机把我的卡吃了"


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings()
    yield fake
    fake.close()


@pytest.fixture
def sem_app(make_app, fake_embeddings):  # type: ignore[no-untyped-def]
    fake_embeddings.concepts = CONCEPTS
    return make_app(
        embedding_url=fake_embeddings.url, embedding_model="fake-bge", embedding_api_key="k3y"
    )


def import_faq(app, tmp_path: Path):  # type: ignore[no-untyped-def]
    from wxbot.qa.cli import kb

    path = tmp_path / "bank.csv"
    path.write_text(FAQ, encoding="utf-8")
    return app.test_cli_runner().invoke(kb, ["import", str(path)])


def vectors_stored(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return conn.execute(select(func.count()).select_from(KbEmbedding)).scalar_one()


def test_lexical_alone_cannot_answer_it(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    import_faq(app, tmp_path)
    reply = content(say(app.extensions["wxbot.bot"], "o_u", QUESTION))
    assert not reply.startswith("请拨打ATM")


def test_import_embeds_in_batches_and_the_fused_ranking_answers(
    sem_app, fake_embeddings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    result = import_faq(sem_app, tmp_path)
    assert result.exit_code == 0 and "embedded 3 questions (fake-bge)" in result.output
    batch = fake_embeddings.requests[0]
    assert batch["model"] == "fake-bge" and len(batch["input"]) == 3
    assert fake_embeddings.auth[0] == "Bearer k3y"
    assert vectors_stored(sem_app) == 3
    bot = sem_app.extensions["wxbot.bot"]
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")
    assert fake_embeddings.requests[-1]["input"] == [QUESTION]  # the query, embedded
    # plain lexical matches still answer as before
    assert content(say(bot, "o_u", "信用卡怎么申请")).startswith("在手机银行")


def test_questions_taught_later_are_embedded_in_the_background(sem_app, fake_embeddings) -> None:  # type: ignore[no-untyped-def]
    bot = sem_app.extensions["wxbot.bot"]
    with bot.engine.begin() as conn:
        from wxbot.qa import writer

        writer.create_entry(
            conn, ["ATM吞卡了怎么办"], "请拨打ATM上的服务电话。", now=1.0, source="api"
        )
        writer.create_entry(conn, ["信用卡怎么申请"], "在线申请。", now=1.0, source="api")
    say(bot, "o_u", "你好")  # this process notices questions without vectors: a job starts
    semantic = bot.deps.kb.semantic
    assert semantic._busy.acquire(timeout=30)  # held by the job until it is done
    semantic._busy.release()
    assert vectors_stored(sem_app) == 2
    assert content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")


def test_a_down_or_slow_service_leaves_the_lexical_answer(
    sem_app, fake_embeddings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import_faq(sem_app, tmp_path)
    bot = sem_app.extensions["wxbot.bot"]
    fake_embeddings.down = True
    assert content(say(bot, "o_u", "信用卡怎么申请")).startswith("在手机银行")
    assert not content(say(bot, "o_u", QUESTION)).startswith("请拨打ATM")
    fake_embeddings.down = False
    bot.deps.kb.semantic.timeout = 0.05
    fake_embeddings.delay = 0.5
    assert content(say(bot, "o_u", "转账多久到账")) == "行内实时到账。"


def test_import_with_the_service_down_still_imports(sem_app, fake_embeddings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake_embeddings.down = True
    result = import_faq(sem_app, tmp_path)
    assert result.exit_code == 0 and "added 3" in result.output
    assert "embedding the questions failed" in result.output
    assert vectors_stored(sem_app) == 0
