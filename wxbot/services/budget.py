"""Time budgets of outbound calls: one small rule that every client follows.

WeChat delivers a message up to three times, about 5 s apart, and the engine keeps slow work
(a ``Deferred``) running across those deliveries. A result that is ready within about 13 s
of the first delivery still answers the third; a later one is pushed by the customer-service
API or arrives with the user's next message. So a *slow* service gets a long read budget,
while a *dead* one must fail fast: the connect budget is short (a refused connection fails
at once anyway; this bounds a host that does not answer at all).

A client adopts it in a line or two::

    self.timeout = budget_for(settings, "llm").timeout     # (connect, read) for requests
    session.post(url, json=body, timeout=self.timeout)

Configuration: ``WXBOT_HTTP_TIMEOUT`` is the read budget of every service (default 12 s),
``WXBOT_TIMEOUTS`` overrides it per service (``weather=8,llm=12``), ``WXBOT_CONNECT_TIMEOUT``
is the connect budget (default 1.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wxbot.config import Settings

# The longest read budget that can still reach the user through WeChat's third delivery:
# it arrives ~10 s after the first and waits up to the reply deadline (4 s) for the result.
WECHAT_WINDOW = 13.0


@dataclass(frozen=True)
class Budget:
    read: float  # seconds to wait for the answer (per socket read, as requests counts it)
    connect: float  # seconds to wait for a connection

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read), as ``requests`` takes it."""
        return (min(self.connect, self.read), self.read)


def budget_for(
    settings: Settings, service: str, read: float | None = None, connect: float | None = None
) -> Budget:
    """The budget of ``service`` (a short name: weather, music, sms, wechat_api, webhook,
    llm, ...). ``read`` / ``connect``: the service's own defaults where it has settings of
    its own (WXBOT_LLM_TIMEOUT), instead of WXBOT_HTTP_TIMEOUT / WXBOT_CONNECT_TIMEOUT;
    WXBOT_TIMEOUTS overrides the read budget either way."""
    default = settings.http_timeout if read is None else read
    return Budget(
        read=settings.timeouts.get(service, default),
        connect=settings.connect_timeout if connect is None else connect,
    )
