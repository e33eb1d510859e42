"""The teachable knowledge base (placeholder until its issue lands)."""

from __future__ import annotations

from typing import Any


def build_knowledge_base(settings: Any, engine: Any) -> Any:
    return None
