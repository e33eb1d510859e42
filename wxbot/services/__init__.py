"""Outbound services (weather, music, SMS, WeChat's API) behind one object handlers use.

Handlers reach them as ``turn.deps.services`` and only ever inside ``Deferred.work`` (a thread
outside the user's lock and transaction): every call here may take seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wxbot.database_clock import shared_clock
from wxbot.services import models  # noqa: F401  (registers the tables on the shared Base)
from wxbot.services.budget import Budget, budget_for
from wxbot.services.http import ServiceError, TTLCache
from wxbot.services.music import MusicClient, Song
from wxbot.services.sms import ConsoleSender, SmsSender, WebhookSender, make_sender
from wxbot.services.weather import Forecast, Place, WeatherClient, WeatherLookup
from wxbot.services.webhook import WebhookClient
from wxbot.services.wechat_api import WeChatApi

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wxbot.config import Settings
    from wxbot.messages.replies import Reply

log = logging.getLogger(__name__)

__all__ = [
    "Budget",
    "ConsoleSender",
    "Forecast",
    "MusicClient",
    "Place",
    "ServiceError",
    "Services",
    "SmsSender",
    "Song",
    "TTLCache",
    "WeChatApi",
    "WeatherClient",
    "WeatherLookup",
    "WebhookClient",
    "WebhookSender",
    "budget_for",
    "build_services",
]


@dataclass
class Services:
    weather: WeatherClient
    music: MusicClient
    sms: SmsSender
    wechat_api: WeChatApi | None = None  # None: no AppSecret, so no customer-service API
    webhook: WebhookClient | None = None  # business flows' webhooks (wxbot.flows)

    def push(self, openid: str, reply: Reply) -> bool:
        """Deliver a late reply through the customer-service API.

        False (never an exception) when the API is not configured or WeChat refused, so the
        engine keeps the reply for the user's next message instead.
        """
        if self.wechat_api is None:
            return False
        return self.wechat_api.send(openid, reply)


def build_services(settings: Settings, engine: Engine) -> Services:
    wechat_api = None
    if settings.appsecret:
        wechat_api = WeChatApi(
            settings.appid,
            settings.appsecret,
            settings.api_url,
            engine,
            http_timeout=budget_for(settings, "wechat_api"),
            # the token's expiry is written by one container and read by all: one clock
            clock=shared_clock(engine),
        )
    return Services(
        weather=WeatherClient(
            settings.geocoding_url,
            settings.weather_url,
            http_timeout=budget_for(settings, "weather"),
        ),
        music=MusicClient(settings.music_url, http_timeout=budget_for(settings, "music")),
        sms=make_sender(
            settings.sms_backend,
            settings.sms_webhook_url,
            budget_for(settings, "sms"),
            demo=settings.demo_credentials,
        ),
        wechat_api=wechat_api,
        webhook=WebhookClient(budget_for(settings, "webhook")),
    )
