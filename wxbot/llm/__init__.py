"""LLM answers: an OpenAI-compatible fallback grounded in the knowledge base, the per-user memory it reads, and token accounting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wxbot.llm import models  # noqa: F401 - registers the memories / llm_* tables on the shared Base
from wxbot.llm.client import ChatClient, Completion, LlmError, Refused
from wxbot.llm.fallback import LlmFallback
from wxbot.llm.memory import MemoryStore
from wxbot.services.budget import budget_for

if TYPE_CHECKING:
    from wxbot.config import Settings

__all__ = [
    "ChatClient",
    "Completion",
    "LlmError",
    "LlmFallback",
    "MemoryStore",
    "Refused",
    "build_fallback",
]


def build_fallback(settings: Settings) -> LlmFallback | None:
    """The LLM fallback when WXBOT_LLM_MODE is (or defaults to) ``fallback``, else None."""
    if not settings.llm_fallback or not settings.llm_url or not settings.llm_model:
        return None
    budget = budget_for(
        settings, "llm", read=settings.llm_timeout, connect=settings.llm_connect_timeout
    )
    client = ChatClient(
        settings.llm_url,
        settings.llm_model,
        settings.llm_api_key,
        settings.llm_max_tokens,
        connect_timeout=budget.connect,
        read_timeout=budget.read,
    )
    return LlmFallback(settings, client)
