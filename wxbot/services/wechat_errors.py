"""What WeChat's API errcodes mean for a push, and the pause that follows the ones that say
"no push can succeed for a while".

A push is one user's late result; a refusal is either about that message (the user has not
written for 48 hours, was pushed too much, unsubscribed: the result waits for their next
message) or about every push (the server's IP is not whitelisted, the AppSecret is wrong, the
account has no customer-service API, the day's quota is spent, the API is down). The second
kind must reach the operator as one clear log line, not one warning per user, and asking
again for every late result only burns quota and holds worker threads: ``ApiGate`` pauses
pushes (they fail at once and the result waits for the user's next message) and says why once.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from wxbot.services.http import ServiceError

# The client's logger: an operator filtering on it sees the pauses with the pushes.
log = logging.getLogger("wxbot.services.wechat_api")

SERVICE = "wechat"

# WeChat's quotas are counted per Beijing calendar day (UTC+8, no daylight saving).
BEIJING = timezone(timedelta(hours=8))
CONFIG_PAUSE = 60.0  # a configuration error: ask again this often, so a fix takes effect soon
DOWN_PAUSE = 15.0  # the API timed out or is unreachable: one try per this long, not per push
MINUTE_QUOTA_PAUSE = 60.0  # 45011: "retry next minute"
ALARM_REPEAT = 3600.0  # an unchanged operator problem is logged again after this long


class Kind(enum.Enum):
    TOKEN = "token"  # the access_token is invalid or expired: fetch a new one, retry once
    BUSY = "busy"  # -1, system busy: try once more shortly
    MESSAGE = "message"  # final for this message; the result waits for the user's next one
    QUOTA = "quota"  # a quota is spent: no pushes until it resets
    CONFIG = "config"  # the operator must fix something: no pushes until then


@dataclass(frozen=True)
class Meaning:
    kind: Kind
    explanation: str  # for the log: what it means and, for the operator, what to do


_SEND: dict[int, Meaning] = {
    -1: Meaning(Kind.BUSY, "WeChat is busy"),
    40001: Meaning(Kind.TOKEN, "access_token invalid"),
    40014: Meaning(Kind.TOKEN, "access_token malformed"),
    42001: Meaning(Kind.TOKEN, "access_token expired"),
    40003: Meaning(Kind.MESSAGE, "not an OpenID of this account"),
    43004: Meaning(Kind.MESSAGE, "the user has unsubscribed"),
    43019: Meaning(Kind.MESSAGE, "the user is blacklisted"),
    45002: Meaning(Kind.MESSAGE, "the message is too long"),
    45015: Meaning(Kind.MESSAGE, "the user has not written in the last 48 hours"),
    45047: Meaning(Kind.MESSAGE, "too many messages pushed to this user"),
    48002: Meaning(Kind.MESSAGE, "the user has turned off messages from this account"),
    45009: Meaning(
        Kind.QUOTA,
        "the API's daily quota is spent; pushes resume after midnight Beijing time (the "
        "console's 接口权限 page can reset it)",
    ),
    45011: Meaning(Kind.QUOTA, "the API's per-minute quota is spent"),
    40164: Meaning(
        Kind.CONFIG,
        "this server's IP is not on the account's IP whitelist: add it in the Official "
        "Account console under 设置与开发 → 基本配置 → IP白名单",
    ),
    48001: Meaning(
        Kind.CONFIG,
        "the account has no customer-service API (unverified subscription accounts do not): "
        "unset WXBOT_APPSECRET or verify the account",
    ),
    48004: Meaning(Kind.CONFIG, "the API is banned for this account: see the console"),
}

# The token endpoint's own refusals: its 40001 means a wrong AppSecret, not a stale token.
_TOKEN: dict[int, Meaning] = {
    -1: _SEND[-1],
    40001: Meaning(Kind.CONFIG, "WXBOT_APPSECRET is wrong (or not this AppID's)"),
    40125: Meaning(Kind.CONFIG, "WXBOT_APPSECRET is wrong (or not this AppID's)"),
    40013: Meaning(Kind.CONFIG, "WXBOT_APPID is not a valid AppID"),
    41002: Meaning(Kind.CONFIG, "WXBOT_APPID is missing"),
    41004: Meaning(Kind.CONFIG, "WXBOT_APPSECRET is missing"),
    45009: _SEND[45009],
    45011: _SEND[45011],
    40164: _SEND[40164],
    48004: _SEND[48004],
}


def meaning(code: int, token_endpoint: bool = False) -> Meaning:
    """What ``code`` means; an unknown code is final for the message (logged with errmsg)."""
    table = _TOKEN if token_endpoint else _SEND
    return table.get(code, Meaning(Kind.MESSAGE, "unexpected refusal"))


class WeChatError(ServiceError):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, code: int, errmsg: str, endpoint: str, token_endpoint: bool = False):
        self.code = code
        self.errmsg = errmsg
        self.meaning = meaning(code, token_endpoint)
        super().__init__(SERVICE, f"{endpoint} refused: {code} {errmsg}")


class Paused(ServiceError):
    """Pushes are paused (see ApiGate); raised before any call is made."""


def next_beijing_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, BEIJING).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()


class ApiGate:
    """Pushes paused after a refusal that every push would get, and the operator told once.

    Per process: each container asks WeChat again once per pause, which is what lets a fixed
    whitelist or a new day take effect without a restart. ``clock`` is wall time (the daily
    quota ends at a wall-clock midnight).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._until = 0.0
        self._until_monotonic = 0.0  # the same end in elapsed time (see check)
        self._reason = ""
        self._alarmed: dict[str, float] = {}  # problem -> when it was last logged

    def check(self) -> None:
        """Raise Paused while pushes are paused."""
        with self._lock:
            # Over by either clock: a wall clock stepped back (NTP) would otherwise stretch
            # the pause by the step, an hour's step by an hour.
            if self.clock() < self._until and self.monotonic() < self._until_monotonic:
                raise Paused(SERVICE, f"pushes paused: {self._reason}")

    def refused(self, error: WeChatError) -> None:
        """A refusal: paused (and logged once) when it holds for every push."""
        kind = error.meaning.kind
        if kind is Kind.CONFIG:
            self._pause(CONFIG_PAUSE, error, logging.ERROR)
        elif kind is Kind.QUOTA:
            now = self.clock()
            until = next_beijing_midnight(now) if error.code == 45009 else now + MINUTE_QUOTA_PAUSE
            self._pause(until - now, error, logging.ERROR)

    def unreachable(self, error: ServiceError) -> None:
        """The API timed out, could not be reached or answered nonsense: one try per
        DOWN_PAUSE instead of every late result holding a worker thread for the budget."""
        self._pause(DOWN_PAUSE, error, logging.WARNING, key=f"down:{error.reason}")

    def cleared(self) -> None:
        """A call succeeded: whatever was wrong is fixed."""
        with self._lock:
            if not self._alarmed:
                return
            self._alarmed.clear()
            self._until = 0.0
        log.info("WeChat's API answers again; customer-service pushes resumed")

    def _pause(
        self, seconds: float, error: ServiceError, level: int, key: str | None = None
    ) -> None:
        now = self.clock()
        if isinstance(error, WeChatError):
            what = f"{error.meaning.explanation} ({error.code} {error.errmsg})"
            key = key or str(error.code)
        else:
            what = f"WeChat's API failed: {error.reason}"
            key = key or error.reason
        with self._lock:
            if now + seconds > self._until:
                self._until = now + seconds
                self._until_monotonic = self.monotonic() + seconds
            self._reason = what
            last = self._alarmed.get(key)
            tell = last is None or now - last >= ALARM_REPEAT
            if tell:
                self._alarmed[key] = now
        if tell:  # once per problem (and hourly while it lasts), not once per user
            log.log(
                level,
                "customer-service push: %s; pushes paused for %.0f s (results wait for the "
                "users' next messages)",
                what,
                seconds,
            )


def errcode(data: dict[str, Any]) -> int:
    """A WeChat answer's errcode (0: none)."""
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1  # nonsense: as good as "busy"
