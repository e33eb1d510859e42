"""Placeholder: filled in by its issue."""

from wxbot.dialog.flow import Handler, Router

STATES: dict[str, Handler] = {}
ROUTERS: list[Router] = []
