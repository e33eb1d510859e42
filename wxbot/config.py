"""Settings from ``WXBOT_*`` environment variables, validated with messages that say what to set."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wxbot.i18n import LANGUAGES, N_
from wxbot.redaction import shown_url

log = logging.getLogger(__name__)

DEMO_TOKEN = "wxbot-demo-token"
DEMO_APPID = "wx0000000000demo"
DEFAULT_WELCOME = N_(
    "欢迎关注！我是问答机器人，直接发问题给我就好。\n"
    "试试：天气 北京、点歌 晴天、绑定手机、查充值；随时发「取消」退出当前步骤，发「人工」转人工客服。\n"
    "发「我的记忆」查看、发「清除记忆」删除我记住的我们的对话。\n"
    "English: language en · ภาษาไทย: language th · Tagalog: language tl · 日本語：language ja"
)
DEFAULT_SYSTEM_PROMPT = (
    "你是一个微信公众号的客服助手。回答简洁、友好、准确，使用用户所用的语言，"
    "一般不超过 300 字；不知道的就说不知道，不要编造。"
    "回答会作为微信纯文本消息发出，不要使用 Markdown 格式（加粗、标题、表格、代码块等）。"
)
LLM_MODES = ("off", "fallback")
TIMEOUT_SERVICES = ("weather", "music", "sms", "webhook", "wechat_api", "llm")  # WXBOT_TIMEOUTS
MAX_HISTORY_ROUNDS = 50
MAX_KEEP_DAYS = 36_500  # WXBOT_MEMORY_DAYS, WXBOT_UNANSWERED_DAYS: a century is for ever
MAX_PROXIES = 5  # WXBOT_TRUSTED_PROXIES: more is a typo, and would trust forged addresses
# Seconds of any one timeout: past an hour it is a typo, and past ~9e9 no socket takes it
# (WXBOT_HTTP_TIMEOUT=1e308 was accepted, and every outbound call then raised OverflowError).
MAX_TIMEOUT = 3600
WECHAT_WAITS = 5  # seconds WeChat waits for an answer: WXBOT_REPLY_DEADLINE must fit in it
_AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which variable to fix and how."""


@dataclass(frozen=True)
class Settings:
    # Secrets are kept out of repr(), so a logged or printed Settings never shows them.
    token: str = field(default=DEMO_TOKEN, repr=False)
    appid: str = DEMO_APPID
    encoding_aes_key: str | None = field(default=None, repr=False)
    previous_aes_key: str | None = field(default=None, repr=False)
    # None: SQLite file in the instance folder; out of repr() as it may hold a password
    database_url: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    admin_openids: frozenset[str] = field(default_factory=frozenset)
    teach_policy: str = "admins"
    session_ttl: int = 600
    max_sessions: int = 100_000
    max_rounds: int = 10
    max_attempts: int = 3
    history_rounds: int = 10
    timestamp_skew: int = 300
    max_body_bytes: int = 64 * 1024
    reply_max_bytes: int = 2000
    welcome: str = DEFAULT_WELCOME
    weather_url: str = "https://api.open-meteo.com"
    geocoding_url: str = "https://geocoding-api.open-meteo.com"
    music_url: str = "https://itunes.apple.com"
    appsecret: str | None = field(default=None, repr=False)
    api_url: str = "https://api.weixin.qq.com"
    sms_backend: str = "console"
    sms_webhook_url: str | None = field(default=None, repr=False)  # may hold a token
    http_timeout: float = 12.0  # read budget of outbound calls (services/budget.py)
    connect_timeout: float = 1.5
    timeouts: Mapping[str, float] = field(default_factory=dict)  # per service, overrides
    reply_deadline: float = 4.0  # seconds a request may spend before WeChat's 5 s limit bites
    seen_ttl: int = 86_400
    memory_days: int = 90  # a stored history not written for this long is emptied (0: never)
    unanswered_days: int = 90  # an unanswered question not asked for this long goes (0: never)
    default_language: str = "zh"  # replies to users whose language is not known yet
    flows_dir: str | None = None  # None: knowledge/flows (see wxbot.flows.default_dir)
    # LLM answers (wxbot/llm): an OpenAI-compatible chat endpoint asked when the knowledge base
    # has no confident answer.
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_system_prompt: str = DEFAULT_SYSTEM_PROMPT
    llm_max_tokens: int = 512
    llm_mode: str | None = None  # off | fallback; None: fallback when llm_url is set
    llm_rate: int = 6  # calls per user per minute (0: no limit)
    llm_daily_tokens: int = 30_000  # tokens per user per day (0: no cap)
    llm_price_input: float = 0.0  # per million prompt tokens, for cost estimates
    llm_price_output: float = 0.0  # per million completion tokens
    llm_connect_timeout: float = 2.0
    llm_timeout: float = 20.0  # read budget: a 7-12 s answer still arrives (retry/push/next)
    timezone: str = "Asia/Shanghai"  # the day boundary of the daily statistics
    # Reverse proxies in front of the app that each append the connecting address to
    # X-Forwarded-For (nginx alone: 1; a cloud load balancer and nginx: 2). 0: the peer
    # that connects is the client. Only then is a client's address its own: the admin
    # lockout counts wrong tokens per address, and behind a proxy every admin shares one.
    trusted_proxies: int = 0
    alias_min_users: int = 2  # distinct users whose did-you-mean pick teaches a wording
    embedding_url: str | None = None  # OpenAI-compatible: POST {url}/embeddings
    embedding_model: str = "bge-m3"
    embedding_api_key: str | None = field(default=None, repr=False)
    embedding_timeout: float = 0.5  # seconds a question may wait for its vector
    embedding_fusion: str | None = None  # weight,confident,margin,suggest (wxbot.qa.fusion)

    @property
    def demo_credentials(self) -> bool:
        return self.token == DEMO_TOKEN or self.appid == DEMO_APPID

    @property
    def llm_fallback(self) -> bool:
        """Ask the LLM when the knowledge base has no confident answer?"""
        mode = self.llm_mode or ("fallback" if self.llm_url else "off")
        return mode == "fallback"


_ENV: dict[str, tuple[str, type]] = {
    "WXBOT_TOKEN": ("token", str),
    "WXBOT_APPID": ("appid", str),
    "WXBOT_ENCODING_AES_KEY": ("encoding_aes_key", str),
    "WXBOT_PREVIOUS_AES_KEY": ("previous_aes_key", str),
    "WXBOT_DATABASE_URL": ("database_url", str),
    "WXBOT_ADMIN_TOKEN": ("admin_token", str),
    "WXBOT_ADMIN_OPENIDS": ("admin_openids", frozenset),
    "WXBOT_TEACH_POLICY": ("teach_policy", str),
    "WXBOT_SESSION_TTL": ("session_ttl", int),
    "WXBOT_MAX_SESSIONS": ("max_sessions", int),
    "WXBOT_MAX_ROUNDS": ("max_rounds", int),
    "WXBOT_MAX_ATTEMPTS": ("max_attempts", int),
    "WXBOT_HISTORY_ROUNDS": ("history_rounds", int),
    "WXBOT_MEMORY_DAYS": ("memory_days", int),
    "WXBOT_UNANSWERED_DAYS": ("unanswered_days", int),
    "WXBOT_TIMESTAMP_SKEW": ("timestamp_skew", int),
    "WXBOT_WELCOME": ("welcome", str),
    "WXBOT_WEATHER_URL": ("weather_url", str),
    "WXBOT_GEOCODING_URL": ("geocoding_url", str),
    "WXBOT_MUSIC_URL": ("music_url", str),
    "WXBOT_APPSECRET": ("appsecret", str),
    "WXBOT_API_URL": ("api_url", str),
    "WXBOT_SMS_BACKEND": ("sms_backend", str),
    "WXBOT_SMS_WEBHOOK_URL": ("sms_webhook_url", str),
    "WXBOT_HTTP_TIMEOUT": ("http_timeout", float),
    "WXBOT_CONNECT_TIMEOUT": ("connect_timeout", float),
    "WXBOT_TIMEOUTS": ("timeouts", dict),
    "WXBOT_REPLY_DEADLINE": ("reply_deadline", float),
    "WXBOT_DEFAULT_LANGUAGE": ("default_language", str),
    "WXBOT_FLOWS_DIR": ("flows_dir", str),
    "WXBOT_LLM_URL": ("llm_url", str),
    "WXBOT_LLM_MODEL": ("llm_model", str),
    "WXBOT_LLM_API_KEY": ("llm_api_key", str),
    "WXBOT_LLM_SYSTEM_PROMPT": ("llm_system_prompt", str),
    "WXBOT_LLM_MAX_TOKENS": ("llm_max_tokens", int),
    "WXBOT_LLM_MODE": ("llm_mode", str),
    "WXBOT_LLM_RATE": ("llm_rate", int),
    "WXBOT_LLM_DAILY_TOKENS": ("llm_daily_tokens", int),
    "WXBOT_LLM_PRICE_INPUT": ("llm_price_input", float),
    "WXBOT_LLM_PRICE_OUTPUT": ("llm_price_output", float),
    "WXBOT_LLM_CONNECT_TIMEOUT": ("llm_connect_timeout", float),
    "WXBOT_LLM_TIMEOUT": ("llm_timeout", float),
    "WXBOT_TIMEZONE": ("timezone", str),
    "WXBOT_TRUSTED_PROXIES": ("trusted_proxies", int),
    "WXBOT_ALIAS_MIN_USERS": ("alias_min_users", int),
    "WXBOT_EMBEDDING_URL": ("embedding_url", str),
    "WXBOT_EMBEDDING_MODEL": ("embedding_model", str),
    "WXBOT_EMBEDDING_API_KEY": ("embedding_api_key", str),
    "WXBOT_EMBEDDING_TIMEOUT": ("embedding_timeout", float),
    "WXBOT_EMBEDDING_FUSION": ("embedding_fusion", str),
}
_FIELD_TYPES = {f.name: f for f in fields(Settings)}
# Empty is a documented way to turn these off (scripts/run.sh: WXBOT_EMBEDDING_URL=).
_EMPTY_MEANS_OFF = frozenset({"WXBOT_EMBEDDING_URL"})


def _refuse_misspelled(environ: Mapping[str, str]) -> None:
    """A WXBOT_ variable named almost like a setting is a typo of it, which was ignored:
    WXBOT_DATABSE_URL served from a fresh SQLite file, WXBOT_ENCODINGAESKEY in plaintext mode.
    Other WXBOT_ names stay allowed: flow files may read any ${VAR} (WXBOT_RECHARGE_WEBHOOK)."""
    import difflib

    for var in sorted(environ):
        if not var.startswith("WXBOT_") or var in _ENV:
            continue
        close = difflib.get_close_matches(var, _ENV, n=1, cutoff=0.85)
        if close:
            raise ConfigError(
                f"{var} is not a wxbot setting: did you mean {close[0]}? Rename it (or unset it)"
            )


def _convert(var: str, raw: str, kind: type) -> Any:
    if kind is dict:  # name=seconds,name=seconds
        parsed = {}
        for part in filter(None, (p.strip() for p in raw.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ConfigError(f"{var}: {part!r} is not name=seconds (e.g. weather=8,sms=10)")
            try:
                parsed[name] = float(value)
            except ValueError:
                raise ConfigError(
                    f"{var}: {part!r} is not name=seconds; separate services with commas "
                    "(e.g. weather=8,sms=10)"
                ) from None
        return parsed
    if kind is frozenset:
        return frozenset(p.strip() for p in raw.split(",") if p.strip())
    if kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a number; set it to e.g. {var}=10") from None
        if value < 0:
            raise ConfigError(f"{var}={raw!r} must not be negative")
        return value
    return raw.strip()


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build Settings from the environment (plus ``overrides`` by field name) and validate them."""
    environ = os.environ if environ is None else environ
    _refuse_misspelled(environ)
    values: dict[str, Any] = {}
    empty = []
    for var, (name, kind) in _ENV.items():
        raw = environ.get(var)
        if raw is not None and raw.strip() != "":
            values[name] = _convert(var, raw, kind)
        elif raw is not None:
            empty.append(var)
    if "WXBOT_DATABASE_URL" in empty and "database_url" not in (overrides or {}):
        # `WXBOT_DATABASE_URL=${DB_URL}` with DB_URL unset: each container then served from
        # a SQLite file of its own (init-db created it), every check green, users' state split
        raise ConfigError(
            "WXBOT_DATABASE_URL is set but empty (an unset variable in a compose file or "
            "script?): set it to the database's URL, e.g. "
            "mysql+pymysql://user:password@host/db?charset=utf8mb4, or unset it to use the "
            "SQLite file in the instance folder"
        )
    for var in empty:
        if var not in _EMPTY_MEANS_OFF:
            log.warning(
                "%s is set but empty: using its default (unset it, or give it a value)", var
            )
    for name, value in (overrides or {}).items():
        if name not in _FIELD_TYPES:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = frozenset(value) if name == "admin_openids" else value
        if name == "timeouts":
            values[name] = dict(value)
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    for var, key in (
        ("WXBOT_ENCODING_AES_KEY", settings.encoding_aes_key),
        ("WXBOT_PREVIOUS_AES_KEY", settings.previous_aes_key),
    ):
        if key is not None and not _AES_KEY_RE.match(key):
            raise ConfigError(
                f"{var} must be the 43-character EncodingAESKey from the WeChat console "
                f"(letters and digits only); got {len(key)} characters"
            )
    if settings.previous_aes_key and not settings.encoding_aes_key:
        raise ConfigError("WXBOT_PREVIOUS_AES_KEY is set but WXBOT_ENCODING_AES_KEY is not")
    if settings.teach_policy not in ("admins", "everyone"):
        raise ConfigError(
            f"WXBOT_TEACH_POLICY must be 'admins' or 'everyone', not {settings.teach_policy!r}"
        )
    if settings.database_url is not None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(settings.database_url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ConfigError(
                "WXBOT_DATABASE_URL is not a SQLAlchemy URL; use e.g. "
                "mysql+pymysql://user:password@host/db?charset=utf8mb4 or sqlite:////path/wxbot.db"
            ) from None
        _check_database_driver(url)
    _validate_timeouts(settings)
    _validate_urls(settings)
    names = ("session_ttl", "max_sessions", "max_rounds", "history_rounds", "max_attempts")
    for name in (*names, "alias_min_users"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"WXBOT_{name.upper()} must be at least 1")
    for name in ("memory_days", "unanswered_days"):
        if not 0 <= getattr(settings, name) <= MAX_KEEP_DAYS:
            raise ConfigError(
                f"WXBOT_{name.upper()} must be 0 (keep for ever) to {MAX_KEEP_DAYS} days"
            )
    if settings.default_language not in LANGUAGES:
        raise ConfigError(f"WXBOT_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}")
    if settings.history_rounds > MAX_HISTORY_ROUNDS:
        raise ConfigError(f"WXBOT_HISTORY_ROUNDS must be at most {MAX_HISTORY_ROUNDS}")
    if settings.trusted_proxies > MAX_PROXIES:
        raise ConfigError(
            f"WXBOT_TRUSTED_PROXIES={settings.trusted_proxies} is more hops than any real "
            f"deployment has (at most {MAX_PROXIES}): count the proxies in front of the bot"
        )
    _validate_llm(settings)
    embedding = (settings.embedding_url or "").strip()
    if embedding and embedding.lower() != "local" and not re.match(r"^https?://[^/\s]+", embedding):
        # accepted before, then every embedding call failed (InvalidSchema), every minute
        raise ConfigError(
            "WXBOT_EMBEDDING_URL must be `local` (the bundled model) or the http(s) base URL "
            "of an OpenAI-compatible API, e.g. http://127.0.0.1:8001/v1 (requests go to "
            "{url}/embeddings)"
        )
    if settings.embedding_fusion:
        from wxbot.qa.fusion import parse_fusion

        try:
            parse_fusion(settings.embedding_fusion)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.timezone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(
            f"WXBOT_TIMEZONE={settings.timezone!r} is not a time zone name; "
            "use e.g. Asia/Shanghai or UTC"
        ) from None
    if settings.sms_backend not in ("console", "webhook"):
        raise ConfigError("WXBOT_SMS_BACKEND must be 'console' or 'webhook'")
    if settings.sms_backend == "webhook" and not settings.sms_webhook_url:
        raise ConfigError("WXBOT_SMS_BACKEND=webhook needs WXBOT_SMS_WEBHOOK_URL")


def _check_database_driver(url: Any) -> None:
    """The URL's database kind and driver exist here: checked with the settings, so a typo
    (``mysql+pymsql://``) or a driver that is not installed (``mysql://`` is mysqlclient's)
    is one line naming the variable, not a traceback from deep in SQLAlchemy."""
    from sqlalchemy.exc import NoSuchModuleError

    if "@" in (url.host or ""):
        # A password (or user name) with an unescaped "@": SQLAlchemy reads the password up to
        # the first one and the rest as the host, which was then shown in every error line
        # ("Can't connect to MySQL server on 'ss@db'": the password's tail). Not shown here.
        raise ConfigError(
            "WXBOT_DATABASE_URL: the password or user name has a character that must be "
            "percent-encoded in a URL: write @ as %40 (and : as %3A, / as %2F, # as %23, "
            "? as %3F, % as %25)"
        )
    if url.get_backend_name() == "mariadb":
        # The message path's MySQL set-up (wxbot/db.py: multi-statements, READ COMMITTED,
        # utf8mb4) is keyed on "mysql": with mariadb+pymysql:// init-db and /healthz were
        # fine and every message failed with a syntax error (users got the apology).
        raise ConfigError(
            f"WXBOT_DATABASE_URL: write {url.drivername!r} as "
            f"'mysql+{url.get_driver_name()}' (the MySQL dialect serves MariaDB too), "
            "e.g. mysql+pymysql://user:password@host/db?charset=utf8mb4"
        )
    if url.get_backend_name() == "mysql" and not url.database:
        raise ConfigError(
            "WXBOT_DATABASE_URL names no database: add its name after the host, e.g. "
            "mysql+pymysql://user:password@host/wxbot?charset=utf8mb4"
        )
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"WXBOT_DATABASE_URL names an unknown database or driver {url.drivername!r}; "
            "use mysql+pymysql://user:password@host/db?charset=utf8mb4 or sqlite:////path/wxbot.db"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(
            f"WXBOT_DATABASE_URL: the {url.drivername!r} driver needs the Python module "
            f"{exc.name or str(exc)!r}, which is not installed; install it, or use "
            "mysql+pymysql://user:password@host/db?charset=utf8mb4"
        ) from None
    _check_connect_options(url, dialect)


def _check_connect_options(url: Any, dialect_class: Any) -> None:
    """The URL's ``?options`` are ones the driver takes, with values it can read: a typo
    (``?chraset=``, ``?bogus=1``) or ``?connect_timeout=abc`` was a TypeError or ValueError
    traceback from every command and from `wxbot serve`, at the first connection."""
    import inspect

    if not url.query:
        return
    try:
        _, options = dialect_class().create_connect_args(url)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"WXBOT_DATABASE_URL: an option after '?' has a value the driver cannot read ({exc})"
        ) from None
    try:
        accepted = inspect.signature(dialect_class.import_dbapi().connect).parameters.values()
    except (TypeError, ValueError):  # a C function without a signature: it checks them itself
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
        return
    names = {p.name for p in accepted}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(
            f"WXBOT_DATABASE_URL: the {url.drivername!r} driver has no option "
            f"{unknown[0]!r}; remove it from after the '?' (charset=utf8mb4 is the usual one)"
        )


def _validate_timeouts(settings: Settings) -> None:
    """Seconds that must be positive: a 0 makes every outbound call fail (requests refuses
    it), not wait without a limit."""
    budgets = [
        ("WXBOT_HTTP_TIMEOUT", settings.http_timeout),
        ("WXBOT_CONNECT_TIMEOUT", settings.connect_timeout),
        ("WXBOT_REPLY_DEADLINE", settings.reply_deadline),
        ("WXBOT_EMBEDDING_TIMEOUT", settings.embedding_timeout),
        # nan and inf passed the LLM's own "positive" check: every LLM call then failed
        ("WXBOT_LLM_CONNECT_TIMEOUT", settings.llm_connect_timeout),
        ("WXBOT_LLM_TIMEOUT", settings.llm_timeout),
        *((f"WXBOT_TIMEOUTS ({name})", value) for name, value in settings.timeouts.items()),
    ]
    for name in settings.timeouts:
        if name not in TIMEOUT_SERVICES:
            raise ConfigError(
                f"WXBOT_TIMEOUTS: unknown service {name!r}; use one of: "
                f"{', '.join(TIMEOUT_SERVICES)}"
            )
    for var, value in budgets:
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{var} must be a positive number of seconds, not {value!r}")
        if value > MAX_TIMEOUT:
            raise ConfigError(f"{var}={value:g} is too long: at most {MAX_TIMEOUT} seconds")
    if settings.reply_deadline > WECHAT_WAITS:
        # WeChat has hung up by then: the user saw 「该公众号暂时无法提供服务」 instead of
        # being told the answer is on its way
        raise ConfigError(
            f"WXBOT_REPLY_DEADLINE={settings.reply_deadline:g} is longer than WeChat waits for "
            f"an answer ({WECHAT_WAITS} s); keep it under that, e.g. 4"
        )


def _validate_urls(settings: Settings) -> None:
    for var, url in (
        ("WXBOT_WEATHER_URL", settings.weather_url),
        ("WXBOT_GEOCODING_URL", settings.geocoding_url),
        ("WXBOT_MUSIC_URL", settings.music_url),
        ("WXBOT_API_URL", settings.api_url),
        ("WXBOT_SMS_WEBHOOK_URL", settings.sms_webhook_url),
    ):
        if url is not None and not re.match(r"^https?://[^/\s]+\S*$", url, re.IGNORECASE):
            shown = shown_url(url)  # a webhook's URL may carry a token or a password
            raise ConfigError(
                f"{var} must be an http(s) URL, e.g. https://host/path; got {shown!r}"
            )


def _validate_llm(settings: Settings) -> None:
    if settings.llm_mode is not None and settings.llm_mode not in LLM_MODES:
        raise ConfigError(f"WXBOT_LLM_MODE must be 'off' or 'fallback', not {settings.llm_mode!r}")
    url = settings.llm_url
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(
            "WXBOT_LLM_URL must be the http(s) base URL of an OpenAI-compatible API, e.g. "
            "https://api.openai.com/v1 (requests go to {url}/chat/completions)"
        )
    if settings.llm_fallback and not url:
        raise ConfigError("WXBOT_LLM_MODE=fallback needs WXBOT_LLM_URL")
    if url and not settings.llm_model:
        raise ConfigError(
            "WXBOT_LLM_URL is set but WXBOT_LLM_MODEL is not; set the model name, "
            "e.g. gpt-4o-mini, deepseek-chat or qwen2.5:7b"
        )
    if not 1 <= settings.llm_max_tokens <= 32_000:
        raise ConfigError("WXBOT_LLM_MAX_TOKENS must be between 1 and 32000")
    for var, price in (
        ("WXBOT_LLM_PRICE_INPUT", settings.llm_price_input),
        ("WXBOT_LLM_PRICE_OUTPUT", settings.llm_price_output),
    ):
        if not math.isfinite(price):  # nan/inf: every cost estimate on the console said nan
            raise ConfigError(f"{var} must be a price per million tokens, e.g. 0.5, not {price!r}")


def warn_about_demo(settings: Settings) -> None:
    if settings.demo_credentials:
        log.warning(
            "wxbot is running with demo credentials (WXBOT_TOKEN / WXBOT_APPID unset): "
            "fine for trying it out, set both from the WeChat console before going live"
        )
