"""The redaction safety net (wxbot.redaction) and the sources it backs up: printed errors,
the console SMS sender, the embeddings client, settings and database URLs."""

from __future__ import annotations

import logging
import re
import socket

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tests.fakeapis import closed_port_url
from wxbot import redaction
from wxbot.cli import cli
from wxbot.config import ConfigError, load_settings
from wxbot.qa.embeddings import EmbeddingClient, EmbeddingError
from wxbot.services.sms import ConsoleSender

PHONE = "13912345678"
MASKED = "139****5678"
USER_TEXT = "退款进度XQ7"  # a user's words (names in the tests' code: tracebacks quote code lines)


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"  # no database server needed here


@pytest.fixture(autouse=True)
def _redacting() -> None:
    redaction.install()  # what create_app does; idempotent


def leaked(found: str, *needles: str) -> list[str]:
    return [n for n in needles if n and n in found]


# --- redact ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ('"POST /cgi-bin/message/custom/send?access_token=TOK123 HTTP/1.1" 200', "TOK123"),
        ("Failed to parse headers (url=http://h/send?access_token=TOK123): x", "TOK123"),
        ("Max retries exceeded with url: /hook?t=TOK123&s=SIG456 (Caused by X)", "SIG456"),
        ("https://hooks.example/recharge?expires=1&signature=SIG456", "SIG456"),
        ("https://api.example/v1/embeddings?key=KEY789", "KEY789"),
        ("mysql+pymysql://wxbot:DBPW42@db.internal/wxbot?charset=utf8mb4", "DBPW42"),
        ("mysql+pymysql://wxbot@db/wxbot?password=DBPW42", "DBPW42"),
        ("{'Authorization': 'Bearer sk-LLMKEY-0123456789'}", "sk-LLMKEY-0123456789"),
        ("appsecret=APPSECRET9&grant_type=client_credential", "APPSECRET9"),
    ],
)
def test_redact_removes_secrets(raw: str, secret: str) -> None:
    assert secret not in redaction.redact(raw)
    assert "***" in redaction.redact(raw)


@pytest.mark.parametrize(
    "raw",
    [
        f"我的手机是{PHONE}，怎么退款",
        "+86 139-1234-5678",
        "139 1234 5678",
        f"Duplicate entry '{PHONE}' for key 'PRIMARY'",
        "8613912345678",
    ],
)
def test_redact_masks_mainland_mobile_numbers(raw: str) -> None:
    clean = redaction.redact(raw)
    assert re.sub(r"\D", "", clean).find("12345678") == -1, clean
    assert MASKED in clean or "139****5678" in clean


@pytest.mark.parametrize(
    "kept",
    [
        "message m|o_user1|876954050439000000 from o_user1 failed",  # a MsgId: 18 digits
        "knowledge index: 12 entries in 0.01s at 1795531601.0860457",  # epoch seconds
        "Starting new HTTP connection (1): 127.0.0.1:38353",
        "GET /admin/api/knowledge?page=2 HTTP/1.1",  # our own request lines keep their query
        "the bearer token is not the admin token",
        "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",  # an OpenID: pseudonymous, kept on purpose
    ],
)
def test_redact_leaves_what_operators_need(kept: str) -> None:
    assert redaction.redact(kept) == kept


def test_outbound_request_lines_lose_every_query_value() -> None:
    line = '"GET /v1/forecast?latitude=23.1291&longitude=113.2644 HTTP/1.1" 200 99'
    assert redaction.redact(line, all_queries=True) == (
        '"GET /v1/forecast?latitude=***&longitude=*** HTTP/1.1" 200 99'
    )


def test_describe_an_exception() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT CHECK (length(v) < 3))"))
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": USER_TEXT + PHONE})
    described = redaction.describe(caught.value)
    assert described.startswith("IntegrityError: (sqlite3.IntegrityError)")
    assert USER_TEXT not in described and PHONE not in described
    assert "parameters hidden" in described


def test_display_url_and_shown_url() -> None:
    assert redaction.display_url("mysql+pymysql://u:DBPW42@h/db?password=X9&charset=utf8mb4") == (
        "mysql+pymysql://u:***@h/db?charset=utf8mb4&password=***"  # SQLAlchemy sorts them
    )
    assert redaction.shown_url("https://u:PW@h.example/sms?key=K1") == "https://h.example/sms?…"
    assert redaction.shown_url("h.example/sms?key=K1") == "h.example/sms?…"
    assert redaction.mask_phone(PHONE) == MASKED


# --- every log record ----------------------------------------------------------------------------


def test_every_record_is_redacted_message_traceback_and_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT CHECK (length(v) < 3))"))
    some = logging.getLogger("some.library")  # not wxbot's: the factory reaches every logger
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": USER_TEXT + PHONE})
    except IntegrityError as exc:
        some.warning("insert failed: %s", exc)
        some.exception("insert failed")
    some.info("calling %s", "https://api.example/send?access_token=TOK-SECRET-1")
    some.info("user %s", PHONE, stack_info=True)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s',
        "http",
        "h",
        80,
        "GET",
        "/search?term=晴天",
        "HTTP/1.1",
        200,
        9,
    )
    logged = caplog.text + "".join(r.stack_info or "" for r in caplog.records)
    assert not leaked(logged, USER_TEXT, PHONE, "TOK-SECRET-1", "晴天")
    assert "parameters hidden" in logged and MASKED in logged and "term=***" in logged


def test_sqlalchemy_echo_shows_no_parameters_or_rows(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine("sqlite://", echo=True)  # what an operator turns on to debug
    caplog.set_level(logging.DEBUG)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": USER_TEXT})
        assert conn.execute(text("SELECT v FROM t")).scalar() == USER_TEXT
    assert "INSERT INTO t" in caplog.text
    assert USER_TEXT not in caplog.text


def test_a_filter_for_handlers_configured_elsewhere() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s", ("K-SECRET",), None)
    assert redaction.RedactingFilter().filter(record)
    assert record.getMessage() == "key=***"


# --- sources -------------------------------------------------------------------------------------


def test_console_sms_sender_logs_neither_the_number_nor_the_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = ConsoleSender()
    shown: list[tuple[str, str]] = []
    with caplog.at_level(logging.DEBUG):
        sender.send(PHONE, "654321")
        sender.show = lambda phone, txt: shown.append((phone, txt))
        sender.send(PHONE, "987654")
    assert not leaked(caplog.text, PHONE, "654321", "987654")
    assert MASKED in caplog.text and "not sent" in caplog.text
    assert sender.sent[PHONE] == "987654"  # tests (and `wxbot chat`) still get the code
    assert shown == [(PHONE, shown[0][1])] and "987654" in shown[0][1]


def test_console_sms_sender_logs_the_code_only_under_the_demo_credentials(
    make_app, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """The quick start (scripts/run.sh, then `wxbot chat --url`) runs the console backend with
    the demo credentials: the server log is the only place its code can be read."""
    from wxbot.config import DEMO_APPID, DEMO_TOKEN

    demo = make_app(token=DEMO_TOKEN, appid=DEMO_APPID).extensions["wxbot.bot"]
    real = make_app(token="tok-real", appid="wxreal00000000001").extensions["wxbot.bot"]
    caplog.set_level(logging.DEBUG)
    demo.deps.services.sms.send(PHONE, "246810")
    assert "246810" in caplog.text and PHONE not in caplog.text and MASKED in caplog.text
    caplog.clear()
    real.deps.services.sms.send(PHONE, "135791")
    assert not leaked(caplog.text, PHONE, "135791")


def test_wxbot_chat_shows_the_console_sms_in_its_terminal_not_the_log(
    make_app, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from wxbot.wechat.chat import chat

    app = make_app(token="tok-real", appid="wxreal00000000001")  # not the demo
    caplog.set_level(logging.DEBUG)
    result = app.test_cli_runner().invoke(chat, ["--openid", "o_cli"], input=f"绑定手机\n{PHONE}\n")
    assert result.exit_code == 0, result.output
    code = app.extensions["wxbot.bot"].deps.services.sms.sent[PHONE]
    assert f"[短信 → {MASKED}]" in result.output and code in result.output
    assert not re.search(rf"(?<!\d){code}(?!\d)", caplog.text)
    assert PHONE not in caplog.text


def test_embeddings_errors_name_no_url_query_nor_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = EmbeddingClient(closed_port_url() + "/v1", "m", api_key="emb-KEY-SECRET-1")
    with pytest.raises(EmbeddingError) as caught:
        client.embed(["你好"], timeout=1.0)
    assert "unreachable (ConnectionError)" in str(caught.value)
    bad_key = EmbeddingClient(closed_port_url() + "/v1", "m", api_key="emb-KEY\u200b-SECRET-2")
    with pytest.raises(EmbeddingError) as caught:  # was: a UnicodeEncodeError, unhandled
        bad_key.embed(["你好"], timeout=1.0)
    assert "WXBOT_EMBEDDING_API_KEY" in str(caught.value)
    assert not leaked(caplog.text + str(caught.value), "emb-KEY-SECRET-1", "SECRET-2")


def test_a_slow_embeddings_service_is_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    server = socket.socket()  # accepts, never answers
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        with pytest.raises(EmbeddingError, match="timed out"):
            EmbeddingClient(url, "m", api_key="emb-KEY-SECRET-3").embed(["x"], timeout=0.2)
    finally:
        server.close()


def test_settings_errors_and_repr_hide_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"WXBOT_SMS_WEBHOOK_URL": "sms.internal/send?key=SMS-KEY-SECRET"})
    assert "SMS-KEY-SECRET" not in str(caught.value) and "WXBOT_SMS_WEBHOOK_URL" in str(
        caught.value
    )
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL") as caught:
        load_settings({"WXBOT_DATABASE_URL": "mysql+pymysql://u:DB-PW-SECRET@h:port/db"})
    assert "DB-PW-SECRET" not in str(caught.value)
    settings = load_settings(
        {
            "WXBOT_TOKEN": "TOKEN-SECRET-1",
            "WXBOT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "WXBOT_DATABASE_URL": "mysql+pymysql://u:DB-PW-SECRET@h/db",
            "WXBOT_ADMIN_TOKEN": "ADMIN-SECRET-1",
            "WXBOT_APPSECRET": "APPSECRET-SECRET-1",
            "WXBOT_SMS_BACKEND": "webhook",
            "WXBOT_SMS_WEBHOOK_URL": "https://sms.internal/send?key=SMS-KEY-SECRET",
            "WXBOT_LLM_URL": "https://llm.example/v1",
            "WXBOT_LLM_MODEL": "m",
            "WXBOT_LLM_API_KEY": "sk-LLM-SECRET-1",
            "WXBOT_EMBEDDING_API_KEY": "EMB-SECRET-1",
        }
    )
    shown = repr(settings)
    assert not leaked(
        shown,
        "TOKEN-SECRET-1",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "DB-PW-SECRET",
        "ADMIN-SECRET-1",
        "APPSECRET-SECRET-1",
        "SMS-KEY-SECRET",
        "sk-LLM-SECRET-1",
        "EMB-SECRET-1",
    )


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://wxbot:DB-PW-SECRET@127.0.0.1:{port}/wxbot",
        "mysql+pymysql://wxbot@127.0.0.1:{port}/wxbot?password=DB-PW-SECRET",
    ],
)
def test_cli_database_errors_print_no_password(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    port = closed_port_url().rsplit(":", 1)[1]
    monkeypatch.setenv("WXBOT_DATABASE_URL", url.format(port=port))
    monkeypatch.setenv("WXBOT_FLOWS_DIR", str(tmp_path))  # no flows needed
    for command in (["init-db"], ["sessions", "cleanup"], ["kb", "export", "-"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code != 0
        assert "database error at mysql+pymysql://wxbot" in result.output, result.output
        assert "DB-PW-SECRET" not in result.output
    assert "DB-PW-SECRET" not in caplog.text


def test_a_reply_that_cannot_be_rendered_is_logged_by_its_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import dataclass

    from tests.wechat_fakes import RecordingBot, edge_app, simulator

    @dataclass(frozen=True)
    class Unknown:  # a bug's reply: its repr would quote what the user sent
        content: str

    app = edge_app(RecordingBot(lambda m: Unknown(f"你的号码 {m.text}")))  # type: ignore[arg-type, return-value]
    caplog.set_level(logging.DEBUG)
    reply = simulator(app).send(app.test_client(), f"{USER_TEXT} {PHONE}")
    assert reply.kind == "text"  # the apology
    assert "could not render a Unknown reply" in caplog.text
    assert USER_TEXT not in caplog.text and PHONE not in caplog.text
