"""The /wechat endpoint with a fake bot: every mode, every bad input, never a 500."""

from __future__ import annotations

import io
import random

import pytest

from tests.wechat_fakes import (
    KEY,
    NOW,
    OLD_KEY,
    OTHER_KEY,
    VECTORS,
    Clock,
    RecordingBot,
    edge_app,
    simulator,
)
from wxbot.messages.replies import Music, News, Silent, Text, TransferToHuman
from wxbot.wechat.callback import APOLOGY
from wxbot.wechat.security import aes_key, encrypt, signature
from wxbot.wechat.simulator import SimulatorError, WeChatSimulator


def post(client, params: dict, body: bytes | str, **kw):  # type: ignore[no-untyped-def]
    data = body.encode() if isinstance(body, str) else body
    return client.post("/wechat", query_string=params, data=data, content_type="text/xml", **kw)


# --- URL verification ---------------------------------------------------------------------------


def test_url_verification_official_vector() -> None:
    v = VECTORS["url_verification"]
    app = edge_app(token=v["token"], clock=Clock(int(v["timestamp"])))
    params = {k: v[k] for k in ("signature", "timestamp", "nonce")}
    resp = app.test_client().get("/wechat", query_string={**params, "echostr": "4713428516"})
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "4713428516"
    assert resp.mimetype == "text/plain"  # echoed text is never served as HTML
    bad = {**params, "signature": "0" * 40, "echostr": "x"}
    assert app.test_client().get("/wechat", query_string=bad).status_code == 403


def test_url_verification_with_simulator_and_bad_requests() -> None:
    app = edge_app()
    client = app.test_client()
    assert simulator(app).verify_url(client, "abc123") == "abc123"
    ts = str(NOW)
    good = {"signature": signature("edge-test-token", ts, "9"), "timestamp": ts, "nonce": "9"}
    assert client.get("/wechat", query_string=good).status_code == 400  # no echostr
    long_echo = {**good, "echostr": "x" * 5000}
    assert client.get("/wechat", query_string=long_echo).status_code == 400
    stale_ts = str(NOW - 301)
    stale = {
        "signature": signature("edge-test-token", stale_ts, "9"),
        "timestamp": stale_ts,
        "nonce": "9",
    }
    assert client.get("/wechat", query_string={**stale, "echostr": "e"}).status_code == 403


def test_url_verification_in_safe_mode_with_encrypted_echostr() -> None:
    app = edge_app(encoding_aes_key=KEY)
    ts, nonce = str(NOW), "77"
    echostr = encrypt(aes_key(KEY), "plain-echo-123", "wx1234567890edge")
    params = {
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": signature("edge-test-token", ts, nonce, echostr),
        "echostr": echostr,
    }
    resp = app.test_client().get("/wechat", query_string=params)
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "plain-echo-123"
    params["msg_signature"] = "0" * 40
    assert app.test_client().get("/wechat", query_string=params).status_code == 403


# --- round trips in every mode ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_round_trip_every_mode_and_reply_type(mode: str) -> None:
    answers = {
        "t": Text("你好"),
        "m": Music("晴天", "周杰伦", "http://m/1.mp3"),
        "n": News(),
        "h": TransferToHuman(),
        "s": Silent(),
    }

    def answer(m):  # type: ignore[no-untyped-def]
        return answers.get(m.text, Text(f"echo:{m.text}"))

    bot = RecordingBot(answer)
    app = edge_app(bot, encoding_aes_key=KEY)
    client, sim = app.test_client(), simulator(app, mode)
    assert sim.send(client, "t") == Text("你好")
    assert sim.send(client, "m") == Music("晴天", "周杰伦", "http://m/1.mp3", "http://m/1.mp3")
    assert sim.send(client, "h") == TransferToHuman()
    assert sim.send(client, "n") == Silent()  # a news reply without articles cannot be sent
    assert sim.send(client, "s") == Silent()
    # a long reply (within WeChat's 2048 bytes: the edge trims longer ones, see render.fit_text)
    assert sim.send(client, "长文本" * 220) == Text("echo:" + "长文本" * 220)
    assert [m.kind for m in bot.seen] == ["text"] * 6


def test_encrypted_reply_is_really_encrypted() -> None:
    app = edge_app(encoding_aes_key=KEY)
    sim = simulator(app, "safe")
    params, body = sim.sign(sim.text("秘密"))
    resp = post(app.test_client(), params, body)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<Encrypt>" in text and "秘密" not in text
    assert "<MsgSignature>" in text and f"<TimeStamp>{NOW}</TimeStamp>" in text


def test_every_message_type_reaches_the_bot_typed() -> None:
    bot = RecordingBot(lambda m: Silent())
    app = edge_app(bot, encoding_aes_key=KEY)
    client, sim = app.test_client(), simulator(app, "safe")
    for message in (
        sim.text("hi"),
        sim.image(),
        sim.voice("天气"),
        sim.video(),
        sim.video(short=True),
        sim.location(39.9, 116.4, "北京"),
        sim.link("t", "http://e/x"),
        sim.event("subscribe", "qrscene_7"),
        sim.event("unsubscribe"),
        sim.event("SCAN", "7", Ticket="T"),
        sim.event("LOCATION", Latitude="1.5", Longitude="2.5", Precision="10"),
        sim.event("CLICK", "K"),
        sim.event("VIEW", "http://e/v"),
        sim.message("miniprogrampage", Title="x"),
        sim.event("TEMPLATESENDJOBFINISH", Status="success"),
    ):
        assert sim.post(client, message) == Silent()
    got = [(m.kind, m.event, m.text or m.event_key) for m in bot.seen]
    assert got == [
        ("text", "", "hi"),
        ("image", "", ""),
        ("voice", "", "天气"),
        ("video", "", ""),
        ("shortvideo", "", ""),
        ("location", "", ""),
        ("link", "", "t"),
        ("event", "subscribe", "7"),
        ("event", "unsubscribe", ""),
        ("event", "scan", "7"),
        ("event", "location", ""),
        ("event", "click", "K"),
        ("event", "view", "http://e/v"),
        ("unknown", "", ""),
        ("event", "templatesendjobfinish", ""),
    ]
    assert bot.seen[5].latitude == 39.9 and bot.seen[10].longitude == 2.5


def test_news_reply_to_an_event_may_have_several_articles() -> None:
    from wxbot.messages.replies import Article

    arts = tuple(Article(f"t{i}") for i in range(3))
    app = edge_app(RecordingBot(lambda m: News(arts)))
    client, sim = app.test_client(), simulator(app)
    assert sim.post(client, sim.event("CLICK", "K")) == News(arts)
    assert sim.send(client, "x") == News(arts[:1])


# --- official vectors over HTTP -----------------------------------------------------------------


def test_compatible_mode_vector_over_http() -> None:
    v = VECTORS["inbound_compatible_mode"]
    bot = RecordingBot(lambda m: Text("收到"))
    app = edge_app(
        bot,
        token=v["token"],
        appid=v["appid"],
        encoding_aes_key=v["encoding_aes_key"],
        clock=Clock(int(v["timestamp"])),
    )
    d = v["decrypts_to"]
    body = (
        f"<xml><ToUserName><![CDATA[{d['ToUserName']}]]></ToUserName>"
        f"<FromUserName><![CDATA[{d['FromUserName']}]]></FromUserName><CreateTime>1409735668</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{d['Content']}]]></Content>"
        f"<MsgId>{d['MsgId']}</MsgId><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>"
    )
    params = {k: v[k] for k in ("signature", "timestamp", "nonce", "msg_signature")}
    resp = post(app.test_client(), {**params, "encrypt_type": "aes"}, body)
    assert resp.status_code == 200
    (m,) = bot.seen
    assert (m.openid, m.text, m.msg_id) == (d["FromUserName"], d["Content"], d["MsgId"])
    sim = WeChatSimulator(v["token"], v["appid"], v["encoding_aes_key"], "compat")
    assert sim.read_reply(resp.get_data(as_text=True), d) == Text("收到")


def test_safe_mode_vector_over_http() -> None:
    v = VECTORS["inbound_safe_mode"]
    bot = RecordingBot(lambda m: Text("ok"))
    app = edge_app(
        bot,
        token=v["token"],
        appid=v["appid"],
        encoding_aes_key=v["encoding_aes_key"],
        clock=Clock(int(v["timestamp"])),
    )
    body = f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>"
    params = {k: v[k] for k in ("timestamp", "nonce", "msg_signature")}
    resp = post(app.test_client(), {**params, "encrypt_type": "aes"}, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [(m.text, m.msg_id) for m in bot.seen] == [("hello", "12345")]
    sim = WeChatSimulator(v["token"], v["appid"], v["encoding_aes_key"], "safe")
    assert sim.read_reply(resp.get_data(as_text=True)) == Text("ok")
    tampered = {**params, "encrypt_type": "aes", "msg_signature": v["msg_signature"][::-1]}
    assert post(app.test_client(), tampered, body).status_code == 403
    assert len(bot.seen) == 1


# --- key rotation -------------------------------------------------------------------------------


def test_key_rotation_accepts_both_keys_and_answers_in_the_key_used() -> None:
    bot = RecordingBot()
    app = edge_app(bot, encoding_aes_key=KEY, previous_aes_key=OLD_KEY)
    client = app.test_client()
    for key in (KEY, OLD_KEY):
        sim = simulator(app, "safe", aes_key=key)  # read_reply decrypts with this key only
        assert sim.send(client, f"with {key[:4]}") == Text(f"echo:with {key[:4]}")
    stranger = simulator(app, "safe", aes_key=OTHER_KEY)
    with pytest.raises(SimulatorError) as exc:
        stranger.send(client, "x")
    assert exc.value.status == 400
    assert len(bot.seen) == 2


def test_after_rotation_ends_the_old_key_is_refused() -> None:
    app = edge_app(encoding_aes_key=KEY)
    with pytest.raises(SimulatorError) as exc:
        simulator(app, "safe", aes_key=OLD_KEY).send(app.test_client(), "x")
    assert exc.value.status == 400


# --- bad inputs: each a 4xx, the bot never called ----------------------------------------------


@pytest.fixture
def edge():  # type: ignore[no-untyped-def]
    bot = RecordingBot()
    app = edge_app(bot, encoding_aes_key=KEY)
    yield app, app.test_client(), bot
    assert all(m.kind for m in bot.seen)


def expect(resp, status: int, reason: str = "") -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert reason in resp.get_data(as_text=True)


def test_bad_signatures_and_timestamps(edge) -> None:  # type: ignore[no-untyped-def]
    app, client, bot = edge
    sim = simulator(app, "plain")
    params, body = sim.sign(sim.text("hi"))
    expect(post(client, {**params, "signature": "0" * 40}, body), 403, "signature")
    expect(post(client, {k: v for k, v in params.items() if k != "signature"}, body), 403)
    expect(post(client, {**params, "signature": "签名"}, body), 403)
    expect(post(client, {**params, "timestamp": "abc"}, body), 400, "timestamp")
    expect(post(client, {k: v for k, v in params.items() if k != "timestamp"}, body), 400)
    expect(post(client, {**params, "nonce": "a]]><x>"}, body), 400, "nonce")
    expect(post(client, {**params, "encrypt_type": "rot13"}, body), 400, "encrypt_type")
    app.extensions["wxbot.clock"].now = NOW + 301  # the same signed request, replayed later
    expect(post(client, params, body), 403, "window")
    app.extensions["wxbot.clock"].now = NOW - 301  # or arriving from the future
    expect(post(client, params, body), 403, "window")
    app.extensions["wxbot.clock"].now = NOW + 300  # inside the window: fine
    expect(post(client, params, body), 200)
    assert len(bot.seen) == 1


def test_body_size_limit(edge) -> None:  # type: ignore[no-untyped-def]
    app, client, bot = edge
    sim = simulator(app, "plain")
    limit = app.extensions["wxbot.settings"].max_body_bytes
    params, body = sim.sign(sim.text("x"))
    pad = limit - len(body.encode())
    exact = body.replace("<Content>", " " * pad + "<Content>")
    assert len(exact.encode()) == limit
    expect(post(client, params, exact), 200)
    expect(post(client, params, exact.replace("<Content>", " <Content>")), 413)
    # a chunked upload (no Content-Length) is cut off at the limit too
    big = io.BytesIO((exact + " " * 10).encode())
    resp = client.post(
        "/wechat",
        query_string=params,
        input_stream=big,
        environ_overrides={"wsgi.input_terminated": True},
    )
    expect(resp, 413)
    assert len(bot.seen) == 1


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "not xml at all",
        "<xml><ToUserName>a</xml>",
        "<html><body/></html>",
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>",
        '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
        "<xml><Content>&d;</Content></xml>",
        "<xml><ToUserName>a</ToUserName></xml>",
        "<xml>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>",
        "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>no MsgId</Content></xml>",
        "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y>"
        "<MsgId>1</MsgId></xml>",
    ],
    ids=[
        "empty",
        "blank",
        "text",
        "unclosed",
        "html",
        "xxe",
        "billion-laughs",
        "missing-fields",
        "deep-nesting",
        "no-msgid",
        "bad-coordinates",
    ],
)
def test_bad_plaintext_bodies(edge, body: str) -> None:  # type: ignore[no-untyped-def]
    app, client, bot = edge
    params, _ = simulator(app, "plain").sign({})
    resp = post(client, params, body)
    expect(resp, 400)
    assert "root:" not in resp.get_data(as_text=True)  # /etc/passwd never read into anything
    assert bot.seen == []


def test_non_utf8_body(edge) -> None:  # type: ignore[no-untyped-def]
    app, client, bot = edge
    params, _ = simulator(app, "plain").sign({})
    expect(post(client, params, b"<xml><Content>\xff\xfe\xfa</Content></xml>"), 400)


def _safe_request(app, inner_encrypt: str):  # type: ignore[no-untyped-def]
    ts, nonce = str(NOW), "4242"
    params = {
        "signature": signature("edge-test-token", ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": signature("edge-test-token", ts, nonce, inner_encrypt),
    }
    return (
        params,
        f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{inner_encrypt}]]></Encrypt></xml>",
    )


def test_bad_encrypted_bodies(edge) -> None:  # type: ignore[no-untyped-def]
    app, client, bot = edge
    sim = simulator(app, "safe")
    good = encrypt(aes_key(KEY), sim.build_xml(sim.text("hi")), "wx1234567890edge")
    cases = {
        "bad base64": ("%%%not-base64%%%", 400),
        "bad base64 padding": (good[:-2] + "=", 400),
        "not whole blocks": (good[:-8], 400),
        "wrong AppID": (encrypt(aes_key(KEY), sim.build_xml(sim.text("hi")), "wxOTHER"), 403),
        "wrong key": (encrypt(aes_key(OTHER_KEY), "<xml/>", "wx1234567890edge"), 400),
        "missing fields inside": (
            encrypt(aes_key(KEY), "<xml><A>1</A></xml>", "wx1234567890edge"),
            400,
        ),
        "doctype inside": (
            encrypt(
                aes_key(KEY), '<!DOCTYPE x [<!ENTITY e "e">]><xml>&e;</xml>', "wx1234567890edge"
            ),
            400,
        ),
    }
    for name, (value, status) in cases.items():
        params, body = _safe_request(app, value)
        resp = post(client, params, body)
        assert resp.status_code == status, (name, resp.get_data(as_text=True))
    params, body = _safe_request(app, good)
    expect(post(client, {**params, "msg_signature": "0" * 40}, body), 403, "msg_signature")
    no_msg_sig = {k: v for k, v in params.items() if k != "msg_signature"}
    expect(post(client, no_msg_sig, body), 403, "msg_signature")
    no_encrypt = body.split("<Encrypt>")[0] + "</xml>"
    expect(post(client, params, no_encrypt), 400, "Encrypt")
    assert bot.seen == []
    expect(post(client, params, body), 200)  # and the untouched request is fine


def test_encrypted_request_without_a_configured_key() -> None:
    bot = RecordingBot()
    app = edge_app(bot)
    sim = WeChatSimulator("edge-test-token", "wx1234567890edge", KEY, "safe", clock=lambda: NOW)
    with pytest.raises(SimulatorError) as exc:
        sim.send(app.test_client(), "hi")
    assert exc.value.status == 400 and "ENCODING_AES_KEY" in exc.value.body
    assert bot.seen == []


def test_rejections_are_logged_with_a_reason(edge, caplog) -> None:  # type: ignore[no-untyped-def]
    app, client, _ = edge
    params, body = simulator(app, "plain").sign({})
    with caplog.at_level("WARNING", logger="wxbot.wechat"):
        post(client, {**params, "signature": "bad"}, body)
    assert "bad signature" in caplog.text and "403" in caplog.text


# --- the bot failing ---------------------------------------------------------------------------


def test_bot_exception_becomes_a_short_apology() -> None:
    def boom(m):  # type: ignore[no-untyped-def]
        raise RuntimeError("database on fire")

    app = edge_app(RecordingBot(boom), encoding_aes_key=KEY)
    assert simulator(app).send(app.test_client(), "hi") == Text(APOLOGY)


def test_unrenderable_reply_becomes_an_apology() -> None:
    app = edge_app(RecordingBot(lambda m: object()))  # type: ignore[arg-type,return-value]
    assert simulator(app).send(app.test_client(), "hi") == Text(APOLOGY)


# --- fuzzing: nothing a client sends produces a 500 --------------------------------------------


def test_mutated_requests_never_cause_a_500() -> None:
    rng = random.Random(20240501)
    app = edge_app(RecordingBot(), encoding_aes_key=KEY)
    client = app.test_client()
    sim = simulator(app, "safe")
    plain = sim.build_xml(sim.location(1.5, 2.5, "x")).encode()
    statuses: set[int] = set()
    for _ in range(300):
        data = bytearray(plain)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        # the mutated plaintext, encrypted and correctly signed: it reaches the parser
        ciphertext = sim_encrypt(bytes(data))
        params, body = _safe_request(app, ciphertext)
        statuses.add(post(client, params, body).status_code)
        # and raw mutations of the ciphertext itself, re-signed: they reach the decrypter
        raw = bytearray(ciphertext.encode())
        raw[rng.randrange(len(raw))] = rng.choice(b"ABCxyz019+/=")
        params, body = _safe_request(app, raw.decode())
        statuses.add(post(client, params, body).status_code)
        # and mutations of a plaintext-mode body, which the signature does not cover
        data = bytearray(plain)
        for _ in range(rng.randint(1, 4)):
            data.insert(rng.randrange(len(data)), rng.choice(b'<>&;"/!?xml ='))
        params, _ = simulator(app, "plain").sign({})
        statuses.add(post(client, params, bytes(data)).status_code)
    assert max(statuses) < 500, statuses
    assert 400 in statuses


def sim_encrypt(data: bytes) -> str:
    from wxbot.wechat.security import _Prp

    return _Prp(aes_key(KEY)).encrypt(data, "wx1234567890edge").decode()


# --- the fast path in front of Flask -----------------------------------------------------------


def _environ(query: str, body: bytes, **extra: str) -> dict:  # type: ignore[type-arg]
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/wechat",
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        **extra,
    }


def _call(app, environ: dict) -> tuple[str, dict, bytes]:  # type: ignore[no-untyped-def,type-arg]
    seen: dict = {}  # type: ignore[type-arg]

    def start_response(status: str, headers: list) -> None:  # type: ignore[type-arg]
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app.wsgi_app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_fast_path_answers_a_message_like_the_flask_route_would() -> None:
    app = edge_app(encoding_aes_key=KEY)
    sim = simulator(app)
    message = sim.text("你好")
    params, body = sim.sign(message)
    # a repeated parameter: the first value counts, as in Flask's request.args
    query = "&".join(f"{k}={v}" for k, v in params.items()) + "&nonce=other"
    status, headers, raw = _call(app, _environ(query, body.encode()))
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert headers["Content-Length"] == str(len(raw))
    assert sim.read_reply(raw.decode(), message) == Text("echo:你好")


@pytest.mark.parametrize("length", ["abc", "-5", "１２"])
def test_fast_path_refuses_a_malformed_content_length(length: str) -> None:
    app = edge_app()
    status, _, body = _call(app, _environ("", b"<xml/>", CONTENT_LENGTH=length))
    assert status.startswith("400 ")


def test_fast_path_reads_no_unterminated_body_without_a_length() -> None:
    """No Content-Length on a server that does not terminate the stream (the development
    server): the body is empty rather than a read that blocks until the client gives up."""

    class Endless(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the body must not be read")

    app = edge_app()
    sim = simulator(app)
    params, _ = sim.sign(sim.text("hi"))
    query = "&".join(f"{k}={v}" for k, v in params.items())
    environ = _environ(query, b"")
    environ.pop("CONTENT_LENGTH")
    environ["wsgi.input"] = Endless()
    status, _, body = _call(app, environ)
    assert status.startswith("400 ") and b"empty body" in body


def test_fast_path_bug_is_a_bare_500_and_other_routes_reach_flask(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = edge_app()
    endpoint = app.extensions["wxbot.wechat.endpoint"]

    def broken(*args: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(endpoint, "receive", broken)
    status, _, body = _call(app, _environ("", b"<xml/>"))
    assert status == "500 Internal Server Error" and b"secret" not in body
    # GET /wechat and any other path are Flask's
    assert app.test_client().get("/wechat").status_code == 400
    assert app.test_client().post("/wechat/other").status_code == 404
