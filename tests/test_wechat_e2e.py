"""The real app (engine + database) behind /wechat, driven by the simulator as WeChat would.

Runs on SQLite and on MySQL through the ``make_app`` fixture.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.wechat_fakes import KEY, OLD_KEY
from wxbot.messages.replies import Silent, Text, TransferToHuman
from wxbot.models import Context, SeenMessage
from wxbot.wechat.simulator import SimulatorError, WeChatSimulator

TOKEN, APPID = "e2e-token", "wx00e2e0000000001"


@pytest.fixture
def safe_app(make_app):  # type: ignore[no-untyped-def]
    return make_app(token=TOKEN, appid=APPID, encoding_aes_key=KEY, previous_aes_key=OLD_KEY)


def sim_for(app, mode: str = "safe", key: str = KEY) -> WeChatSimulator:  # type: ignore[no-untyped-def]
    return WeChatSimulator(TOKEN, APPID, key, mode, clock=app.extensions["wxbot.clock"])


def count(app, model, **where) -> int:  # type: ignore[no-untyped-def]
    table = model.__table__
    stmt = select(func.count()).select_from(table)
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    with app.extensions["wxbot.engine"].connect() as conn:
        return conn.execute(stmt).scalar_one()


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_conversation_in_every_mode(safe_app, mode: str) -> None:  # type: ignore[no-untyped-def]
    client, sim = safe_app.test_client(), sim_for(safe_app, mode)
    welcome = sim.post(client, sim.event("subscribe", "qrscene_42", openid="o_e2e"))
    assert welcome == Text(safe_app.extensions["wxbot.settings"].welcome)
    assert isinstance(sim.send(client, "你好", openid="o_e2e"), Text)
    assert sim.send(client, "人工", openid="o_e2e") == TransferToHuman()


def test_every_message_type_gets_an_answer_not_an_error(safe_app) -> None:  # type: ignore[no-untyped-def]
    client, sim = safe_app.test_client(), sim_for(safe_app)
    for message in (
        sim.image("o_types"),
        sim.voice("", "o_types"),
        sim.voice("你好", "o_types"),
        sim.video("o_types"),
        sim.video("o_types", short=True),
        sim.location(39.9, 116.4, "北京", "o_types"),
        sim.link("标题", "http://example.com", "o_types"),
        sim.event("SCAN", "7", "o_types", Ticket="T"),
        sim.event("LOCATION", "", "o_types", Latitude="1", Longitude="2", Precision="3"),
        sim.event("CLICK", "MENU_KEY", "o_types"),
        sim.event("VIEW", "http://example.com", "o_types"),
        sim.message("miniprogrampage", "o_types", Title="x"),
        sim.event("TEMPLATESENDJOBFINISH", "", "o_types", Status="success"),
    ):
        reply = sim.post(client, message)  # raises on any non-200 or unverifiable reply
        assert isinstance(reply, (Text, Silent)), (message, reply)
        if isinstance(reply, Text):
            assert reply.content and len(reply.content.encode()) <= 2048


def test_retries_get_the_identical_reply_from_any_instance(make_app) -> None:  # type: ignore[no-untyped-def]
    settings = {"token": TOKEN, "appid": APPID, "encoding_aes_key": KEY}
    first, second = make_app(**settings), make_app(**settings)  # two containers, one database
    sim = sim_for(first)
    message = sim.text("你好，请问营业时间", openid="o_retry")
    replies = [
        sim.post(first.test_client(), message),
        sim.post(second.test_client(), message),  # WeChat's retry lands on another container
        sim.post(first.test_client(), message),
    ]
    assert replies[0] == replies[1] == replies[2]
    key = f"m|o_retry|{message['MsgId']}"
    assert count(first, SeenMessage, dedup_key=key) == 1
    with first.extensions["wxbot.engine"].connect() as conn:
        attempts = conn.execute(
            select(SeenMessage.attempts).where(SeenMessage.dedup_key == key)
        ).scalar_one()
    assert attempts == 3


def test_retried_subscribe_is_welcomed_once(safe_app) -> None:  # type: ignore[no-untyped-def]
    client, sim = safe_app.test_client(), sim_for(safe_app)
    event = sim.event("subscribe", "", "o_sub")
    assert sim.post(client, event) == sim.post(client, event)
    assert count(safe_app, SeenMessage, openid="o_sub") == 1


def test_unsubscribe_forgets_the_user(safe_app) -> None:  # type: ignore[no-untyped-def]
    client, sim = safe_app.test_client(), sim_for(safe_app)
    sim.send(client, "你好", openid="o_gone")
    assert count(safe_app, Context, openid="o_gone") == 1
    assert sim.post(client, sim.event("unsubscribe", "", "o_gone")) == Silent()
    assert count(safe_app, Context, openid="o_gone") == 0


def test_key_rotation_through_the_app(safe_app) -> None:  # type: ignore[no-untyped-def]
    client = safe_app.test_client()
    for key in (KEY, OLD_KEY):
        assert isinstance(sim_for(safe_app, key=key).send(client, "你好", openid="o_rot"), Text)


def test_rejected_requests_change_nothing(safe_app) -> None:  # type: ignore[no-untyped-def]
    client, sim = safe_app.test_client(), sim_for(safe_app)
    params, body = sim.sign(sim.text("hi", openid="o_evil"))
    assert sim.request(client, "POST", {**params, "msg_signature": "0" * 40}, body).status == 403
    safe_app.extensions["wxbot.clock"].advance(3600)  # a replay an hour later
    assert sim.request(client, "POST", params, body).status == 403
    with pytest.raises(SimulatorError):
        WeChatSimulator("wrong-token", APPID, KEY, "safe", clock=sim.clock).send(
            client, "x", "o_evil"
        )
    assert count(safe_app, Context, openid="o_evil") == 0
    assert count(safe_app, SeenMessage, openid="o_evil") == 0
