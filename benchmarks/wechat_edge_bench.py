"""Cost of the WeChat protocol edge alone (verify, decrypt, parse, render, encrypt), per mode.

A do-nothing bot answers every message, so the figures are what /wechat adds on top of the
engine, in-process through Flask's test client (no sockets). Prints messages/s and µs/message.

    python benchmarks/wechat_edge_bench.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import time

from flask import Flask

from wxbot.config import Settings
from wxbot.messages.replies import Text
from wxbot.wechat import init_app
from wxbot.wechat.parse import parse_xml, to_inbound
from wxbot.wechat.simulator import WeChatSimulator

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class NullBot:
    def handle(self, inbound):  # type: ignore[no-untyped-def]
        return Text("营业时间是每天 9:00-18:00。")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    n = parser.parse_args().messages
    app = Flask("bench")
    app.extensions["wxbot.settings"] = Settings(
        token="bench", appid="wxbench", encoding_aes_key=KEY
    )
    app.extensions["wxbot.bot"] = NullBot()
    init_app(app)
    client = app.test_client()
    for mode in ("plain", "compat", "safe"):
        sim = WeChatSimulator("bench", "wxbench", KEY, mode)
        signed = [
            sim.sign(sim.text(f"第{i}个问题：营业时间是几点", f"o_{i % 100}")) for i in range(n)
        ]
        start = time.perf_counter()
        for params, body in signed:
            resp = client.post(
                "/wechat", query_string=params, data=body.encode(), content_type="text/xml"
            )
            assert resp.status_code == 200
        elapsed = time.perf_counter() - start
        print(
            f"{mode:7s} {n / elapsed:8.0f} msg/s  {elapsed / n * 1e6:7.1f} µs/msg (Flask test client, edge only)"
        )
    _components(n)


def _components(n: int) -> None:
    """The edge's own work per safe-mode message, without Flask's request handling."""
    from wxbot.wechat.render import render
    from wxbot.wechat.security import Keyring, aes_key, signature_ok

    sim = WeChatSimulator("bench", "wxbench", KEY, "safe")
    params, body = sim.sign(sim.text("第1个问题：营业时间是几点", "o_1"))
    ring = Keyring("bench", "wxbench", (aes_key(KEY),))
    steps = {}

    def step(name, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        for _ in range(n):
            result = fn()
        steps[name] = (time.perf_counter() - start) / n * 1e6
        return result

    outer = step("parse envelope", lambda: parse_xml(body.encode()))
    step(
        "msg_signature",
        lambda: signature_ok(
            params["msg_signature"], "bench", params["timestamp"], params["nonce"], outer["Encrypt"]
        ),
    )
    xml, _ = step("decrypt", lambda: ring.decrypt(outer["Encrypt"]))
    inbound = step("parse + Inbound", lambda: to_inbound(parse_xml(xml.encode())))
    reply = step("render", lambda: render(NullBot().handle(inbound), inbound, 1))
    step("encrypt + sign", lambda: ring.seal(reply, 0, params["nonce"], 1))
    for name, us in steps.items():
        print(f"  {name:16s} {us:6.1f} µs")
    print(f"  {'edge total':16s} {sum(steps.values()):6.1f} µs/msg (safe mode, no HTTP framework)")


if __name__ == "__main__":
    main()
