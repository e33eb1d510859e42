"""A minimal client for OpenAI-compatible chat APIs: ``POST {url}/chat/completions``.

Why ``requests`` and not the ``openai`` package: the engine already owns the time budget
(WeChat's 5-second window, its retries, late delivery), so the client must make exactly one
attempt with our timeouts. The official package retries twice with backoff by default and
brings httpx and pydantic along; the wire format we need is one JSON request and one reply.

Retries: a connection that could not be opened is tried once more (nothing was sent); a read
that failed is not (the provider may have answered and billed). A 429 starts a cool-down
(its Retry-After, else COOL_DOWN_DEFAULT seconds) during which this process makes no call.
The API key goes only into the Authorization header of each request: never into a log line,
an exception message or the Settings repr.

Refusals are not failures: a provider's content filter (finish_reason ``content_filter`` or
``sensitive``, an HTTP 400 with a content-filter code) or the model's own ``message.refusal``
comes back as ``Refused``, so the user is told the question cannot be answered and no part
of a filtered answer is shown. Answers are turned from Markdown into plain text (plaintext.py).
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from wxbot.llm.plaintext import to_plain_text
from wxbot.messages.replies import UNSENDABLE
from wxbot.services.http import NOT_JSON, json_or_not, make_session

log = logging.getLogger(__name__)

COOL_DOWN_DEFAULT = 20.0  # seconds without calls after a 429 that names no Retry-After
COOL_DOWN_MAX = 300.0
MAX_ANSWER_CHARS = 4000  # a provider that ignores max_tokens still gets paged, not flooded
# Markdown converted at most: markdown-it takes seconds (holding the GIL, so the whole worker
# waits) on a few hundred kB of brackets or stars; 16k characters take a fraction of a second.
MAX_SOURCE_CHARS = 4 * MAX_ANSWER_CHARS
MAX_TOKENS_REPORTED = 10_000_000  # a usage count beyond any context window is nonsense
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON "\\ud83d" without its pair
# finish_reason values that mean a content filter stopped the answer: OpenAI, Azure, DeepSeek,
# Moonshot, Gemini's compatible API ("content_filter"); Zhipu GLM, Tencent Hunyuan ("sensitive")
FILTERED = frozenset({"content_filter", "sensitive", "safety", "prohibited_content"})
# finish_reason values that mean the answer broke off: DeepSeek under load, Zhipu's inference
# errors, vLLM's aborted requests. What came so far is not the answer.
INTERRUPTED = frozenset({"insufficient_system_resource", "network_error", "abort", "error"})
# error codes (or types) of requests a content filter refused: Azure and Moonshot
# ("content_filter"), DashScope's compatible mode ("data_inspection_failed"; its native API
# "DataInspectionFailed"), Zhipu GLM ("1301"), OpenAI and LiteLLM ("content_policy_violation")
REFUSAL_CODES = frozenset(
    {
        "content_filter",
        "data_inspection_failed",
        "datainspectionfailed",
        "1301",
        "content_policy_violation",
    }
)
# DeepSeek names no code of its own for a refused prompt, only this message
REFUSAL_MESSAGES = frozenset({"content exists risk"})
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # a provider's code, fit for a log line


class LlmError(Exception):
    """The call failed: unreachable, timed out, refused, or answered something unusable.
    ``reason`` is safe to log (it never contains the key)."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        # what the provider reported (and billed) for an answer we could not use
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool  # finish_reason "length": the answer hit max_tokens


@dataclass(frozen=True)
class Refused:
    """The provider's content filter or the model declined the question. ``reason`` names
    where it was said (never the user's words or the model's); ``source`` is one of
    ``finish_reason``, ``error``, ``refusal``. Billed tokens count like an answer's."""

    reason: str
    source: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatClient:
    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None,
        max_tokens: int,
        connect_timeout: float,
        read_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.max_tokens = max_tokens
        self.timeout = (connect_timeout, read_timeout)
        self.clock = clock
        self._session = make_session(retry_reads=False)
        self._cool_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # no key here either
        return f"ChatClient({self.endpoint!r}, model={self.model!r})"

    def cooling_down(self) -> bool:
        """True while a 429's Retry-After runs: calls would be refused anyway."""
        return self.clock() < self._cool_until

    def complete(self, messages: list[dict[str, str]]) -> Completion | Refused:
        """One chat completion, or the provider's refusal; raises LlmError (with a loggable
        reason) on any failure."""
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}
        try:
            # The session reads the body within the read budget and a size cap (a body that
            # drips or runs to megabytes: services/http.py). Redirects are not followed:
            # requests turns a 301/302 POST into a GET (an unhelpful 404/405 later) and
            # repeats the POST on a 307, which may bill twice.
            response = self._session.post(
                self.endpoint,
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise LlmError("timed out") from None
        except (UnicodeEncodeError, requests.exceptions.InvalidHeader):
            # The key is our only header of our own: one pasted with a zero-width space or a
            # full-width letter makes http.client raise a UnicodeEncodeError whose repr holds
            # the whole header (the key), and the slow path logs what work raises with %r; a
            # trailing newline was reported as "unreachable". Neither is re-raised.
            raise LlmError(
                "WXBOT_LLM_API_KEY cannot be sent: it has a character not allowed in an HTTP"
                " header (a pasted newline, full-width or zero-width character?)"
            ) from None
        except requests.RequestException as exc:
            raise LlmError(f"unreachable ({type(exc).__name__})") from None
        if response.status_code == 429:
            wait = self._cool_down(
                response.headers.get("Retry-After"), response.headers.get("Date")
            )
            raise LlmError(f"rate limited (HTTP 429), pausing {wait:.0f}s", retry_after=wait)
        data = json_or_not(response.content)
        if response.status_code != 200:
            return _not_ok(response.status_code, data)
        if data is NOT_JSON:
            raise LlmError("answered with something that is not JSON")
        if (
            isinstance(data, dict)
            and isinstance(data.get("error"), dict)
            and not data.get("choices")
        ):  # an error sent with 200 (some gateways do)
            return _refused_or_raise(data["error"], "HTTP 200 with an error")
        return _completion(data, self.model)

    def _cool_down(self, retry_after: str | None, sent: str | None = None) -> float:
        wait = min(_retry_after_seconds(retry_after, sent), COOL_DOWN_MAX)
        with self._lock:
            self._cool_until = max(self._cool_until, self.clock() + wait)
        return wait


def _retry_after_seconds(value: str | None, sent: str | None = None) -> float:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110); else the default. A
    date is the provider's clock: counted from the response's own ``Date`` (the same clock)
    when it has one, so a provider minutes off ours neither stops our calls for the longest
    pause nor lets them hammer it at once."""
    if not value:
        return COOL_DOWN_DEFAULT
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return COOL_DOWN_DEFAULT
    now = _http_date(sent) if sent else None
    return max(0.0, when - (time.time() if now is None else now))


def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP date, in UTC whatever zone it names (None if malformed)."""
    parts = email.utils.parsedate_tz(value)
    return None if parts is None else float(email.utils.mktime_tz(parts))


def _not_ok(status: int, body: Any) -> Refused:
    """A status other than 200 and 429: a content filter's refusal, else LlmError naming the
    provider's error code (its message is never kept: it may quote the prompt)."""
    error = body.get("error") if isinstance(body, dict) else None
    where = f"HTTP {status}"
    if 300 <= status < 400:  # the Location is not logged: it is the provider's, not ours
        raise LlmError(f"{where}: redirected (set WXBOT_LLM_URL to where it redirects)")
    if status in (401, 403) and not _is_refusal(error):
        raise LlmError(f"{where} (check WXBOT_LLM_API_KEY)")
    return _refused_or_raise(error if isinstance(error, dict) else {}, where)


def _refused_or_raise(error: dict[str, Any], where: str) -> Refused:
    """``error`` (an OpenAI-style error object) as a Refused, or raised as an LlmError."""
    code = _error_code(error)
    if _is_refusal(error):
        return Refused(f"{where}: refused by the content filter ({code or 'no code'})", "error")
    raise LlmError(f"{where} ({code})" if code else where)


def _is_refusal(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    names = {str(error.get(k) or "").strip().lower() for k in ("code", "type")}
    message = str(error.get("message") or "").strip().lower()
    return bool(names & REFUSAL_CODES) or message in REFUSAL_MESSAGES


def _error_code(error: dict[str, Any]) -> str:
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, (str, int)) and _SAFE_CODE.fullmatch(str(value)):
            return str(value)
    return ""


def _completion(data: Any, model: str) -> Completion | Refused:
    usage = data.get("usage") if isinstance(data, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    # an answer we cannot use was billed all the same: the error carries its tokens
    billed = (_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise LlmError("unexpected JSON: no choices[0].message.content", None, *billed) from None
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    finish = finish.strip().lower() if isinstance(finish, str) else ""
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():  # OpenAI: the model declined, content null
        return Refused("the model refused (message.refusal)", "refusal", *billed)
    if finish in FILTERED:  # any text so far is a fragment the filter cut: not shown
        reason = f"stopped by the content filter (finish_reason {finish})"
        return Refused(reason, "finish_reason", *billed)
    if finish in INTERRUPTED:
        raise LlmError(f"the answer broke off (finish_reason {finish})", None, *billed)
    if content is None and message.get("reasoning_content"):
        content = ""  # a reasoning model that thought away all of max_tokens (DeepSeek, Qwen)
    if isinstance(content, list):  # content parts (OpenAI's newer shape, Mistral, gateways)
        if any(isinstance(p, dict) and p.get("type") == "refusal" for p in content):
            return Refused("the model refused (a refusal part)", "refusal", *billed)
        content = _text_parts(content)
    if not isinstance(content, str):
        raise LlmError("unexpected JSON: the content is not text", None, *billed)
    source = strip_thinking(content)
    # Before Markdown: a lone surrogate (a pair cut apart, JSON "\ud83d") failed the whole
    # resume when the answer was saved (the user got the system-error apology, the billed
    # call was not counted); control characters no XML reply may carry were kept for
    # promotion, which the knowledge base then refused.
    source = UNSENDABLE.sub("", _LONE_SURROGATE.sub("", source))
    cut = len(source) > MAX_SOURCE_CHARS
    # WeChat shows Markdown as raw characters; converted first, so that an answer of markup
    # alone counts as empty and the length cap counts what is shown
    text = to_plain_text(source[:MAX_SOURCE_CHARS])
    if not text:  # e.g. a reasoning model that thought away all of max_tokens
        raise LlmError("empty answer", None, *billed)
    truncated = finish == "length" or cut or len(text) > MAX_ANSWER_CHARS
    return Completion(
        text=text[:MAX_ANSWER_CHARS],
        model=str(data.get("model") or model),
        prompt_tokens=billed[0],
        completion_tokens=billed[1],
        truncated=truncated,
    )


def strip_thinking(content: str) -> str:
    """The answer without a reasoning model's thinking: whole ``<think>…</think>`` blocks;
    reasoning that ends in ``</think>`` alone (DeepSeek-R1 templates put the opening tag into
    the prompt); and thinking cut off by max_tokens before its closing tag (no answer yet)."""
    # str.find, not a regex: "<think>.*?</think>" scans to the end from every unclosed
    # "<think>" (a model looping on the tag): 112 kB took 8 s of CPU, holding the GIL
    kept, at = [], 0
    while (start := content.find("<think>", at)) >= 0:
        end = content.find("</think>", start + len("<think>"))
        if end < 0:
            break
        kept.append(content[at:start])
        at = end + len("</think>")
    kept.append(content[at:])
    text = "".join(kept)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.strip()


def _text_parts(parts: list[Any]) -> str | None:
    """The text of content parts (``{"type": "text", "text": ...}`` or bare strings); parts
    of other kinds (a model's ``thinking``, images) are not the answer. None: no text part."""
    texts = [
        p if isinstance(p, str) else p.get("text")
        for p in parts
        if isinstance(p, str) or (isinstance(p, dict) and p.get("type") in ("text", None))
    ]
    texts = [t for t in texts if isinstance(t, str)]
    return "".join(texts) if texts else None


def _count(value: Any) -> int:
    """A reported token count; nonsense (negative, a bool, beyond any context window, where
    it overflowed the database's integer columns) counts as nothing."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return value if ok and 0 <= value <= MAX_TOKENS_REPORTED else 0
