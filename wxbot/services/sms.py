"""Pluggable SMS senders for verification codes: ``console`` (log it) or ``webhook`` (POST JSON).

A real SMS gateway (Aliyun, Tencent Cloud, ...) is reached through the webhook: a small relay
that receives ``{"phone", "code", "text"}`` and calls the gateway keeps vendor keys out of here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import requests

from wxbot.i18n import DEFAULT_LANGUAGE, N_, translate
from wxbot.redaction import mask_phone
from wxbot.services.budget import Budget
from wxbot.services.http import ServiceError, make_session, timeouts

log = logging.getLogger(__name__)

SERVICE = "sms"


CODE_TEXT = N_("【wxbot】您的验证码是 {code}，{minutes} 分钟内有效。如非本人操作请忽略。")


def code_text(code: str, minutes: int = 5, language: str = DEFAULT_LANGUAGE) -> str:
    return translate(CODE_TEXT, language, code=code, minutes=minutes)


class SmsSender(Protocol):
    def send(self, phone: str, code: str, language: str = DEFAULT_LANGUAGE) -> None:
        """Deliver ``code`` to ``phone`` (the text in ``language``) or raise ServiceError."""


class ConsoleSender:
    """Development sender: texts nothing. The last code per phone is remembered (tests read
    it) and ``show`` (set by the in-process `wxbot chat`) prints the text in the developer's
    terminal. The log names a masked number only; the code is logged only under the demo
    credentials (``demo``), where no real user can be texted and a developer following the
    quick start (`scripts/run.sh`, then `wxbot chat --url`) has no other way to read it.
    Anywhere else logs are shipped and shared, and a code there would bind a number."""

    KEEP = 100  # remembered codes (a long-running dev server must not grow without bound)

    def __init__(self, demo: bool = False) -> None:
        self.sent: dict[str, str] = {}
        self.demo = demo
        self.show: Callable[[str, str], None] | None = None  # (phone, text)

    def send(self, phone: str, code: str, language: str = DEFAULT_LANGUAGE) -> None:
        self.sent.pop(phone, None)  # re-insert: the newest code is last
        self.sent[phone] = code
        while len(self.sent) > self.KEEP:
            del self.sent[next(iter(self.sent))]
        text = code_text(code, language=language)
        if self.demo:
            log.warning(
                "SMS to %s not sent (demo credentials, console backend): %s",
                mask_phone(phone),
                text,
            )
        else:
            log.warning(
                "SMS to %s not sent: WXBOT_SMS_BACKEND=console is for development (the code "
                "is logged only with the demo credentials; `wxbot chat` shows it)",
                mask_phone(phone),
            )
        if self.show is not None:
            self.show(phone, text)


class WebhookSender:
    def __init__(self, url: str, http_timeout: Budget | float = 12.0) -> None:
        self.url = url
        self.timeout = timeouts(http_timeout)
        # POST is not idempotent: retry only when the connection itself failed (nothing sent).
        self.session: requests.Session = make_session(retry_reads=False)

    def send(self, phone: str, code: str, language: str = DEFAULT_LANGUAGE) -> None:
        payload = {"phone": phone, "code": code, "text": code_text(code, language=language)}
        try:
            response = self.session.post(self.url, json=payload, timeout=self.timeout)
        except requests.Timeout:
            raise ServiceError(SERVICE, "timed out") from None
        except requests.RequestException as exc:
            raise ServiceError(SERVICE, f"unreachable ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise ServiceError(SERVICE, f"HTTP {response.status_code}")


def make_sender(
    backend: str, webhook_url: str | None, http_timeout: Budget | float, demo: bool = False
) -> SmsSender:
    if backend == "webhook" and webhook_url:
        return WebhookSender(webhook_url, http_timeout)
    return ConsoleSender(demo=demo)
