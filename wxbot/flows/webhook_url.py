"""A flow's webhook URL: ``${VAR}`` expanded from the environment, then checked to be one the
webhook client can post to; messages never show its password or query string."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from wxbot.flows.yamlcheck import Checker

ENV = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def expand(check: Checker, url: str, line: int) -> str | None:
    """``${VAR}`` / ``${VAR:-default}`` from the environment, so one file serves every stage."""

    def value(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found:
            return found
        if match.group(2) is not None:
            return match.group(2)
        missing.append(match.group(1))
        return ""

    if "${" in ENV.sub("", url):
        check.error(
            line, "write environment variables as ${NAME} or ${NAME:-default} (A-Z, 0-9, _)"
        )
        return None
    missing: list[str] = []
    expanded = ENV.sub(value, url)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        check.error(line, f"the webhook URL needs {', '.join(missing)}, which {verb} not set")
        return None
    problem = _url_problem(expanded)
    if problem:
        check.error(line, f"the webhook {_shown(expanded)!r} is not an http(s) URL: {problem}")
        return None
    try:
        urlsplit(expanded).port  # noqa: B018 - raises on a port that is not 0 to 65535
    except ValueError as exc:  # a warning: the console shows such a flow (and says so)
        check.warn(line, f"the webhook {_shown(expanded)!r} will fail: {exc}")
    return expanded


def _url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a URL the webhook client can post to, if anything."""
    if not url:
        return "it is empty"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "it contains a space or a control character"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return "it must start with http:// or https://"
    if not host:
        return "it has no host"
    return None


def _shown(url: str) -> str:
    """A URL for messages: without a password or a query string (often a token)."""
    before, sep, rest = url.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        url = f"{before}://{authority.rpartition('@')[2]}{slash}{path}"
    base, query, _ = url.partition("?")
    return base + ("?…" if query else "")
