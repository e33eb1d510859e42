"""Review of the protocol edge: what reaches WeChat must be something WeChat accepts."""

from __future__ import annotations

import threading
import time

from tests.wechat_fakes import KEY
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Text
from wxbot.wechat.parse import parse_xml
from wxbot.wechat.render import MAX_TEXT_BYTES, render
from wxbot.wechat.simulator import WeChatSimulator

TOKEN, APPID = "edge-review-token", "wx00edge000000001"
MSG = Inbound(openid="u1", kind="text", dedup_key="m|u1|1", text="hi", account="gh_acct")
LONG = "长" * 1000  # 3000 UTF-8 bytes


def test_a_text_reply_never_exceeds_wechats_limit() -> None:
    fields = parse_xml(render(Text(LONG + "😀"), MSG, 1).encode())
    sent = fields["Content"]
    assert len(sent.encode("utf-8")) <= MAX_TEXT_BYTES
    assert sent.startswith("长" * 600) and sent.endswith("…")
    assert parse_xml(render(Text("短"), MSG, 1).encode())["Content"] == "短"


def test_a_slow_long_answer_overtaken_by_another_message_still_fits(make_app) -> None:  # type: ignore[no-untyped-def]
    """The slow answer of a message the user already moved past reaches the user whole: its
    first page fits WeChat's limit and 「继续」 serves the rest (it was trimmed at the edge,
    and its end lost)."""
    app = make_app(token=TOKEN, appid=APPID, encoding_aes_key=KEY, reply_deadline=4.0)
    release, started = threading.Event(), threading.Event()

    def slow(turn: Turn) -> Outcome | None:
        if turn.text != "慢长":
            return None

        def work() -> bool:
            started.set()
            return release.wait(10)

        resume = lambda _turn, _result: Outcome(Text(LONG))  # noqa: E731
        return Outcome(Text("稍等"), WAIT_QUERY, deferred=Deferred(work=work, resume=resume))

    app.extensions["wxbot.bot"].table.routers.insert(0, slow)
    client = app.test_client()
    sim = WeChatSimulator(TOKEN, APPID, KEY, "safe", clock=app.extensions["wxbot.clock"])
    replies: list[Reply] = []
    first = threading.Thread(target=lambda: replies.append(sim.send(client, "慢长", "o_edge")))
    first.start()
    assert started.wait(5)
    time.sleep(0.1)  # the slow work's phase one has committed
    sim.send(app.test_client(), "你好", "o_edge")  # the user moves on meanwhile
    release.set()
    first.join(10)
    (reply,) = replies
    assert isinstance(reply, Text) and reply.content.startswith("长" * 100)
    assert len(reply.content.encode("utf-8")) <= MAX_TEXT_BYTES
    assert not reply.content.endswith("…")  # a page, not a trimmed text
    received = reply.content.split("\n（第")[0]
    while "继续" in reply.content:  # type: ignore[union-attr]
        reply = sim.send(app.test_client(), "继续", "o_edge")
        assert isinstance(reply, Text)
        received += reply.content.split("\n（第")[0]
    assert received == LONG
