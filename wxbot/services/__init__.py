"""Outbound services (placeholder until its issue lands)."""

from __future__ import annotations

from typing import Any


def build_services(settings: Any, engine: Any) -> Any:
    return None
