"""The business webhooks flows call at their end: POST JSON, read a JSON object back.

A POST may have been processed even when the answer was lost, so it is never retried after
the request went out (only a connection that failed before sending is tried again).
"""

from __future__ import annotations

from typing import Any

import requests

from wxbot.services.budget import Budget
from wxbot.services.http import ServiceError, make_session, request_json, timeouts

SERVICE = "webhook"


class WebhookClient:
    def __init__(self, http_timeout: Budget | float = 12.0) -> None:
        self.timeout = timeouts(http_timeout)
        self.session: requests.Session = make_session(retry_reads=False)

    def post(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON object the webhook answered, or ServiceError (down, slow, not JSON)."""
        data = request_json(self.session, SERVICE, "POST", url, self.timeout, json=payload)
        if not isinstance(data, dict):
            raise ServiceError(SERVICE, "answered with JSON that is not an object")
        return data
