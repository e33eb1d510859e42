"""The database's own errors (SQLite and MySQL): SQLAlchemy puts a failed statement's
parameters in its message (a user's words, a phone number, the access_token being stored),
and MySQL quotes a duplicate value itself. None of it may reach a log record or an error
body; the failures are made with triggers that refuse one table's writes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.fakeapis import APPSECRET, FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.test_log_privacy_e2e import (  # noqa: F401 - fixtures
    ADMIN,
    MASKED,
    PHONE,
    USER_TEXT,
    assert_private,
    chat_fixture,
    logs_fixture,
)
from wxbot import create_app
from wxbot.messages.replies import Text

APOLOGY = "抱歉"


def refuse(engine: Engine, table: str, operation: str = "INSERT") -> None:
    """Make every ``operation`` on ``table`` fail, as a full disk or a lost table would."""
    name = f"refuse_{table}_{operation.lower()}"
    if engine.dialect.name == "sqlite":
        sql = (
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    else:
        sql = (
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'"
        )
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)


def engine_of(talk: Any) -> Engine:
    return talk.app.extensions["wxbot.engine"]  # type: ignore[no-any-return]


def test_recording_an_unanswered_question_fails(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    refuse(engine_of(talk), "kb_unanswered")
    talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    talk.finish()
    assert "kb_unanswered" in logs.text  # the failure is logged, statement and all ...
    assert_private(logs, talk.bodies, words=(USER_TEXT,))  # ... not its parameters


def test_storing_the_verified_number_fails(chat, fake_apis: FakeApis, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    refuse(engine_of(talk), "phone_bindings")
    talk.say("绑定手机", PHONE)
    code = fake_apis.sms[-1]["code"]
    (reply,) = talk.say(code)
    assert APOLOGY in reply.content  # type: ignore[attr-defined]
    talk.finish()
    assert "phone_bindings" in logs.text
    assert_private(logs, talk.bodies, codes=(code,))


def test_a_number_another_user_bound_already(chat, fake_apis: FakeApis, logs) -> None:  # type: ignore[no-untyped-def]
    """MySQL's own message quotes the value: "Duplicate entry '139...' for key ..."."""
    talk = chat()
    with engine_of(talk).begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX test_one_owner ON phone_bindings (phone)")
    codes = []
    for openid in ("o_first", "o_second"):
        talk.openid = openid
        talk.say("绑定手机", PHONE)
        codes.append(fake_apis.sms[-1]["code"])
        (reply,) = talk.say(codes[-1])
    assert APOLOGY in reply.content  # type: ignore[attr-defined]
    talk.finish()
    assert "test_one_owner" in logs.text or "phone_bindings.phone" in logs.text
    if engine_of(talk).dialect.name != "sqlite":
        assert MASKED in logs.text  # still there for the operator, masked
    assert_private(logs, talk.bodies, codes=tuple(codes))


def test_keeping_an_llm_answer_fails(chat, fake_llm: FakeLlm, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat(**fake_llm.settings())
    refuse(engine_of(talk), "llm_answers")
    talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    talk.finish()
    assert "llm_answers" in logs.text
    assert_private(logs, talk.bodies, words=(USER_TEXT,))


def test_storing_the_access_token_fails(chat, fake_apis: FakeApis, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    refuse(engine_of(talk), "wechat_tokens", "UPDATE")
    talk.say("你好")
    services = talk.app.extensions["wxbot.bot"].deps.services
    assert services.push(talk.openid, Text("x")) is False
    talk.finish()
    assert fake_apis.tokens and "wechat_tokens" in logs.text
    assert_private(logs, talk.bodies, words=(APPSECRET, *fake_apis.tokens))


def test_an_admin_api_write_fails(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    auth = {"Authorization": f"Bearer {ADMIN}"}
    entry = talk.client.post(
        "/admin/api/knowledge", headers=auth, json={"question": "退款多久到账", "answer": "三天"}
    )
    assert entry.status_code == 201, entry.get_data(as_text=True)
    (asked,) = talk.client.get("/admin/api/unanswered", headers=auth).get_json()["items"]
    refuse(engine_of(talk), "kb_questions")
    talk.app.config["PROPAGATE_EXCEPTIONS"] = False  # as served: a 500, logged by Flask
    response = talk.client.post(
        f"/admin/api/unanswered/{asked['id']}/attach",
        headers=auth,
        json={"entry_id": entry.get_json()["id"]},
    )
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal error; see the server log"
    talk.finish()
    assert "kb_questions" in logs.text
    assert_private(logs, [response.get_data(as_text=True)], words=(USER_TEXT,))


@pytest.mark.parametrize("where", ["password", "query"])
def test_an_unreachable_database_with_a_password(where: str, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    port = closed_port_url().rsplit(":", 1)[1]
    url = (
        f"mysql+pymysql://wxbot:DB-PW-SECRET@127.0.0.1:{port}/wxbot"
        if where == "password"
        else f"mysql+pymysql://wxbot@127.0.0.1:{port}/wxbot?password=DB-PW-SECRET"
    )
    app = create_app({"database_url": url, "flows_dir": str(tmp_path)})
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        from wxbot.migrations.guard import check_before_serving

        check_before_serving(app.extensions["wxbot.engine"])  # logs, does not raise
    finally:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()
    assert re.search(r"unreachable|failed", caplog.text)
    assert "DB-PW-SECRET" not in caplog.text + response.get_data(as_text=True)
