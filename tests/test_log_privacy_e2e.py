"""End to end: conversations through /wechat (the simulator plays WeChat, every reply is
signed and encrypted), with every outside service working, down (503), unreachable (a
closed port), slow (a timeout) or dropping the connection; the admin API and the console.
No log record of any logger, at any level, and no error body may hold a secret (the Token,
the EncodingAESKey, the AppSecret, the access_token, the admin token, a console session,
API keys, webhook secrets) or a user's phone number or SMS code; a user's words appear in
no record at INFO or above. OpenIDs are kept on purpose (pseudonymous, needed to follow a
user's report)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from tests.fakeapis import APPID, APPSECRET, FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from tests.fakellm import API_KEY as LLM_KEY
from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.wechat_fakes import KEY
from wxbot.messages.replies import Reply, Text
from wxbot.wechat.simulator import SimulatorError, WeChatSimulator

TOKEN = "wx-token-SECRET-e2e-0001"
ADMIN = "admin-token-SECRET-e2e-0001"
SMS_KEY, SMS_PASSWORD = "sms-key-SECRET-e2e", "sms-pw-SECRET-e2e"
HOOK_SIGN = "hook-sign-SECRET-e2e"
SECRETS = (TOKEN, KEY, ADMIN, APPSECRET, LLM_KEY, SMS_KEY, SMS_PASSWORD, HOOK_SIGN)
PHONE, MASKED = "13912345678", "139****5678"
USER_TEXT = "请帮我看看退款进度XQ7"  # unanswered by the starter knowledge
LAT, LON = 23.1291, 113.2644  # a user's shared location
ORDER = "202501150830123456"


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"  # the database's own errors: *_db.py


@pytest.fixture(name="logs")
def logs_fixture(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: wxbot's, urllib3's, Flask's, ...
    return caplog


@dataclass
class Chat:
    app: Flask
    openid: str = "o_privacy_user"
    bodies: list[str] = field(default_factory=list)  # every HTTP body the bot answered

    def __post_init__(self) -> None:
        self.client = self.app.test_client()
        self.sim = WeChatSimulator(
            TOKEN,
            self.app.extensions["wxbot.settings"].appid,
            KEY,
            "safe",
            clock=self.app.extensions["wxbot.clock"],
        )

    def post(self, message: dict[str, Any]) -> Reply:
        params, body = self.sim.sign(message)
        raw = self.sim.request(self.client, "POST", params, body)
        self.bodies.append(raw.text)
        if raw.status != 200:
            raise SimulatorError(f"HTTP {raw.status}: {raw.text.strip()}", raw.status, raw.text)
        return self.sim.read_reply(raw.text, message)

    def say(self, *lines: str) -> list[Reply]:
        return [self.post(self.sim.text(line, self.openid)) for line in lines]

    def finish(self) -> None:
        """Let slow work under way end (and log) before the logs are read."""
        self.app.extensions["wxbot.bot"].close()


@pytest.fixture(name="chat")
def chat_fixture(make_app, fake_apis: FakeApis) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """``chat(**settings)``: an app with every secret set and its services on the fakes."""
    made: list[Chat] = []

    def build(**overrides: Any) -> Chat:
        settings = {
            **fake_apis.settings(),
            "token": TOKEN,
            "appid": APPID,
            "encoding_aes_key": KEY,
            "admin_token": ADMIN,
            "appsecret": APPSECRET,
            "sms_backend": "webhook",
            "sms_webhook_url": _with_secrets(f"{fake_apis.url}/sms"),
            **overrides,
        }
        made.append(Chat(make_app(**settings)))
        return made[-1]

    yield build
    for one in made:
        one.finish()


def _with_secrets(url: str) -> str:
    """A webhook URL with a password and a key in it, as operators write them."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://relay:{SMS_PASSWORD}@{rest}?key={SMS_KEY}"


def leaks(found: str, codes: tuple[str, ...] = (), words: tuple[str, ...] = ()) -> list[str]:
    out = [s for s in (*SECRETS, PHONE, *words) if s in found]
    return out + [c for c in codes if re.search(rf"(?<!\d){c}(?!\d)", found)]


def assert_private(
    caplog: pytest.LogCaptureFixture,
    bodies: list[str] = (),  # type: ignore[assignment]
    codes: tuple[str, ...] = (),
    words: tuple[str, ...] = (),
) -> None:
    """No secret, number or code in any record (message, traceback, stack) nor body; the
    user's words in no record at INFO or above."""
    everything = caplog.text + "".join(r.stack_info or "" for r in caplog.records)
    found = leaks(everything, codes, words)
    assert not found, f"{found} in the log:\n{everything}"
    errors = [b for b in bodies if not b.lstrip().startswith("<xml>") and b != "success"]
    found = leaks("\n".join(errors), codes)
    assert not found, f"{found} in an error body: {errors}"
    loud = "\n".join(
        r.getMessage() + (r.exc_text or "") for r in caplog.records if r.levelno >= logging.INFO
    )
    assert USER_TEXT not in loud, loud


# --- phone binding ---------------------------------------------------------------------------------


def test_phone_binding_with_the_console_sender(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat(sms_backend="console", appid="wxreal00000000001")  # the demo appid logs the code
    talk.say("绑定手机", f"+86 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}")
    code = talk.app.extensions["wxbot.bot"].deps.services.sms.sent[PHONE]
    wrong = "000000" if code != "000000" else "111111"
    replies = talk.say(wrong, code)
    assert isinstance(replies[-1], Text) and MASKED in replies[-1].content
    talk.finish()
    assert "not sent" in logs.text  # the console sender says what it did ...
    assert_private(logs, talk.bodies, codes=(code,))  # ... without the number or the code


@pytest.mark.parametrize("failure", ["none", "down", "unreachable", "timeout", "dropped"])
def test_phone_binding_with_the_sms_webhook(chat, fake_apis: FakeApis, logs, failure: str) -> None:  # type: ignore[no-untyped-def]
    overrides: dict[str, Any] = {"timeouts": {"sms": 0.5}}
    if failure == "unreachable":
        overrides["sms_webhook_url"] = _with_secrets(f"{closed_port_url()}/sms")
    talk = chat(**overrides)
    if failure == "down":
        fake_apis.down.add("sms")
    elif failure == "timeout":
        fake_apis.hold("sms")
    elif failure == "dropped":
        fake_apis.drop_next["sms"] = 1
    try:
        replies = talk.say("绑定手机", PHONE, "重发")
    finally:
        fake_apis.release("sms")
    codes = tuple(body["code"] for body in fake_apis.sms)
    if failure == "none":
        assert codes and fake_apis.sms[-1]["phone"] == PHONE
        replies += talk.say(codes[-1])
        assert MASKED in replies[-1].content  # type: ignore[attr-defined]
    talk.finish()
    assert_private(logs, talk.bodies, codes=codes)


# --- weather, music, the LLM, business webhooks ----------------------------------------------------


@pytest.mark.parametrize("failure", ["none", "down", "unreachable"])
def test_weather_and_music(chat, fake_apis: FakeApis, logs, failure: str) -> None:  # type: ignore[no-untyped-def]
    url = closed_port_url() if failure == "unreachable" else fake_apis.url
    talk = chat(weather_url=url, geocoding_url=url, music_url=url)
    if failure == "down":
        fake_apis.down.update({"forecast", "geocoding", "music"})
    talk.post(talk.sim.location(LAT, LON, "广州市海珠区", talk.openid))
    talk.say("天气 北京", "点歌 晴天")
    talk.finish()
    assert_private(logs, talk.bodies, words=(str(LAT), str(LON)))


@pytest.mark.parametrize("failure", ["none", "500", "401", "unreachable", "timeout"])
def test_llm_answers(chat, fake_llm: FakeLlm, logs, failure: str) -> None:  # type: ignore[no-untyped-def]
    url = closed_port_url() + "/v1" if failure == "unreachable" else fake_llm.url
    talk = chat(**fake_llm.settings(llm_url=url, llm_timeout=0.5))
    if failure in ("500", "401"):  # providers' error bodies may quote the prompt
        error = {"error": {"message": f"bad prompt: {USER_TEXT} {PHONE}", "code": "x"}}
        fake_llm.script.append(("error", int(failure), error))
    elif failure == "timeout":
        fake_llm.hold()
    try:
        talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    finally:
        fake_llm.release()
    talk.finish()
    assert_private(logs, talk.bodies)


@pytest.mark.parametrize("failure", ["none", "down", "unreachable", "dropped"])
def test_a_flow_webhook_with_a_signed_url(  # type: ignore[no-untyped-def]
    make_app, chat, fake_apis: FakeApis, logs, monkeypatch, failure: str
) -> None:
    base = closed_port_url() if failure == "unreachable" else fake_apis.url
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{base}/recharge?sign={HOOK_SIGN}&t=1")
    talk = chat()
    if failure == "down":
        fake_apis.down.add("recharge")
    elif failure == "dropped":
        fake_apis.drop_next["recharge"] = 1
    talk.say("查充值", ORDER)
    talk.finish()
    assert_private(logs, talk.bodies)


# --- WeChat's customer-service API ------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["none", "down", "unreachable", "dropped", "token rejected"])
def test_customer_service_pushes(chat, fake_apis: FakeApis, logs, failure: str) -> None:  # type: ignore[no-untyped-def]
    api = closed_port_url() if failure == "unreachable" else fake_apis.url
    talk = chat(api_url=api)
    talk.say("你好")
    services = talk.app.extensions["wxbot.bot"].deps.services
    assert services.push(talk.openid, Text("first")) is (failure != "unreachable")
    if failure == "down":
        fake_apis.down.add("send")
    elif failure == "dropped":
        fake_apis.drop_next["send"] = 1
    elif failure == "token rejected":
        fake_apis.revoked.update(fake_apis.tokens)
        fake_apis.errcodes["token"] = [40125]  # and then the AppSecret is refused
    services.push(talk.openid, Text(f"你的号码 {PHONE}"))
    talk.finish()
    assert_private(logs, talk.bodies, words=tuple(fake_apis.tokens))


# --- the callback, the admin API and the console -------------------------------------------------


def test_refused_callbacks(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    message = talk.sim.text(f"{USER_TEXT} {PHONE}", talk.openid)
    forged = {
        "wrong token": WeChatSimulator("not-the-token", APPID, KEY, "safe", clock=talk.sim.clock),
        "wrong key": WeChatSimulator(TOKEN, APPID, "A" * 43, "safe", clock=talk.sim.clock),
        "wrong appid": WeChatSimulator(TOKEN, "wx-other-app", KEY, "safe", clock=talk.sim.clock),
    }
    for sim in forged.values():
        params, body = sim.sign(message)
        raw = sim.request(talk.client, "POST", params, body)
        assert 400 <= raw.status < 500
        talk.bodies.append(raw.text)
    for params in ({"echostr": "x", "timestamp": "1", "nonce": "n"}, {"signature": TOKEN}):
        response = talk.client.get("/wechat", query_string=params)
        assert 400 <= response.status_code < 500
        talk.bodies.append(response.get_data(as_text=True))
    assert_private(logs, talk.bodies)


def test_admin_api_errors(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    given = "admin-token-SECRET-e2e-0002-wrong"
    bodies: list[str] = []
    for headers in ({}, {"Authorization": f"Bearer {given}"}, {"Authorization": given}):
        response = talk.client.get("/admin/api/sessions", headers=headers)
        assert response.status_code in (401, 403)
        bodies.append(response.get_data(as_text=True))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    for path in ("/admin/api/sessions/o_nobody", "/admin/api/knowledge/999999999", "/admin/api/x"):
        response = talk.client.get(path, headers=auth)
        assert response.status_code == 404
        bodies.append(response.get_data(as_text=True))
    response = talk.client.post(
        "/admin/api/knowledge",
        headers=auth,
        data=f'{{"question": "{PHONE}"',
        content_type="application/json",
    )
    assert response.status_code == 400
    bodies.append(response.get_data(as_text=True))
    assert_private(logs, bodies + talk.bodies, words=(given,))


def test_console_login_and_pages(chat, logs) -> None:  # type: ignore[no-untyped-def]
    talk = chat()
    talk.say(f"我的手机{PHONE}，{USER_TEXT}")
    client = talk.app.test_client()
    page = client.get("/admin/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf is not None
    given = "admin-token-SECRET-e2e-0003-wrong"
    wrong = client.post("/admin/login", data={"token": given, "csrf_token": csrf.group(1)})
    assert wrong.status_code == 401
    pages = [wrong.get_data(as_text=True)]
    page = client.get("/admin/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf is not None
    right = client.post("/admin/login", data={"token": ADMIN, "csrf_token": csrf.group(1)})
    assert right.status_code == 303
    cookie = client.get_cookie("wxbot_console", path="/admin") or client.get_cookie("wxbot_console")
    session = cookie.value if cookie is not None else ""
    for path in (
        "/admin/",
        "/admin/conversations",
        f"/admin/conversations/{talk.openid}",
        "/admin/nope",
    ):
        response = client.get(path)
        assert response.status_code in (200, 404), path
        if response.status_code != 200:
            pages.append(response.get_data(as_text=True))
    words = (given, session) if session else (given,)
    assert_private(logs, pages, words=words)
