"""WeChat's server API for customer-service push: one access_token shared by every container
(wxbot.services.wechat_token), and the pushes themselves.

A push has one time budget for all its steps (waiting for another thread's refresh, the
fetch, the send, a second fetch and send after WeChat rejected the token): a dead API costs
a worker thread that budget once, and then pushes pause (wxbot.services.wechat_errors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from sqlalchemy import Engine

from wxbot.messages.replies import Reply
from wxbot.services.budget import Budget
from wxbot.services.http import (
    Deadline,
    ServiceError,
    as_budget,
    make_session,
    redact_url_secrets_in_logs,
    request_json,
)
from wxbot.services.wechat_errors import SERVICE, ApiGate, Kind, Paused, WeChatError, errcode
from wxbot.services.wechat_messages import custom_message, custom_messages, encode
from wxbot.services.wechat_token import TokenStore

__all__ = ["SERVICE", "WeChatApi", "custom_message", "custom_messages"]

log = logging.getLogger(__name__)

BUSY_RETRY_AFTER = 0.5  # seconds before the one retry of a push WeChat was too busy for


class WeChatApi:
    def __init__(
        self,
        appid: str,
        appsecret: str,
        api_url: str,
        engine: Engine,
        http_timeout: Budget | float = 12.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self.appsecret = appsecret
        self.api_url = api_url.rstrip("/")
        self.engine = engine
        self.clock = clock
        # The read budget is the whole push's (every step), the connect budget each connect's.
        self.budget = as_budget(http_timeout)
        self.timeout = self.budget.timeout
        self.session: requests.Session = make_session(retry_reads=False)
        redact_url_secrets_in_logs()  # the token travels in the query string
        self.gate = ApiGate(clock)
        self.tokens = TokenStore(
            appid, appsecret, self.api_url, engine, self._post_json, self.gate, clock
        )

    def deadline(self) -> Deadline:
        return Deadline(SERVICE, self.budget)

    # --- access_token ----------------------------------------------------------------------

    def access_token(self, invalid: str | None = None, deadline: Deadline | None = None) -> str:
        """A valid token (wxbot.services.wechat_token); ``invalid``: one WeChat just rejected.
        Raises ServiceError when none can be had within ``deadline`` (one budget, by default)."""
        return self.tokens.get(invalid, deadline or self.deadline())

    # --- customer-service messages ---------------------------------------------------------

    def send(self, openid: str, reply: Reply) -> bool:
        """Push ``reply`` to ``openid``; True when WeChat accepted it. Never raises.

        False means the user has not got it (the caller keeps it for their next message). A
        text too long for one message goes as several; if a later part fails, the earlier
        ones were delivered and the whole reply is still reported undelivered: a repeat is
        better than a result lost.
        """
        bodies = custom_messages(openid, reply)
        if not bodies:
            return False
        deadline = self.deadline()
        try:
            return all(self._send_one(openid, body, deadline) for body in bodies)
        except Paused as exc:  # said once when the pause began; not once per user
            log.debug("custom/send to %s skipped: %s", openid, exc)
        except ServiceError as exc:
            log.warning("custom/send to %s failed: %s", openid, exc)
        except Exception:  # a push is best effort; the engine falls back to the next message
            log.exception("custom/send to %s crashed", openid)
        return False

    def _send_one(self, openid: str, body: dict[str, Any], deadline: Deadline) -> bool:
        invalid: str | None = None
        token = ""
        busy_retried = False
        while True:
            self.gate.check()
            try:
                token = self.access_token(invalid, deadline)
                data = self._post_json(
                    f"{self.api_url}/cgi-bin/message/custom/send",
                    body,
                    deadline,
                    params={"access_token": token},
                )
                code = errcode(data)
                if code == 0:
                    self.gate.cleared()
                    return True
                raise WeChatError(code, str(data.get("errmsg")), "custom/send")
            except WeChatError as exc:
                kind = exc.meaning.kind
                if kind is Kind.TOKEN and invalid is None:
                    invalid = token  # one new token and one retry; never a loop
                    continue
                if kind is Kind.BUSY and not busy_retried:
                    busy_retried = True
                    time.sleep(min(BUSY_RETRY_AFTER, deadline.timeout()[1] / 2))
                    continue
                if kind in (Kind.CONFIG, Kind.QUOTA):
                    self.gate.refused(exc)  # logged there, once
                    raise Paused(SERVICE, str(exc)) from None
                # About this message only (the user's 48 hours are over, ...): it waits for the
                # user's next message. A new token rejected too, or an errcode we do not
                # know, is worth a warning.
                usual = kind is Kind.MESSAGE and exc.meaning.explanation != "unexpected refusal"
                log.log(
                    logging.INFO if usual else logging.WARNING,
                    "custom/send to %s refused: %s (%s)",
                    openid,
                    exc.meaning.explanation,
                    exc,
                )
                return False

    def _post_json(
        self,
        url: str,
        body: dict[str, Any],
        deadline: Deadline,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            data = request_json(
                self.session,
                SERVICE,
                "POST",
                url,
                deadline.timeout(),
                data=encode(body),
                params=params,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            if not isinstance(data, dict):
                raise ServiceError(SERVICE, "answer is not an object")
        except ServiceError as exc:
            if exc.reason != "out of time":  # our own budget, not the API's fault
                self.gate.unreachable(exc)
            raise
        return data
