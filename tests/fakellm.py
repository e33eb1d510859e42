"""A local OpenAI-compatible chat server that records what it is asked.

It speaks the real wire format: ``POST /v1/chat/completions`` with ``{"model", "messages",
"max_tokens"}`` answers ``{"id", "object": "chat.completion", "model", "choices":
[{"index": 0, "message": {"role": "assistant", "content": ...}, "finish_reason": ...}],
"usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``.

Tokens are counted as characters (prompt: every message's content; completion: the answer),
so tests can check that usage adds up. Knobs:
- ``answer``: a function of the request's messages returning the content (default: echo);
- ``script``: a list of canned failures served first, one per request: ``("status", 500)``,
  ``("status", 429, {"Retry-After": "30"})``, ``("raw", b"<html>...")`` (not JSON),
  ``("json", {...})`` (JSON without an answer), ``("content", "")``, ``("length", "text")``
  (finish_reason "length"); and providers' real shapes: ``("finish", reason, content)``
  (any finish_reason, content may be None), ``("message", {...}, finish_reason)`` (the
  message object as given: ``refusal``, ``reasoning_content``...), ``("error", status, {...})``
  (an HTTP error with that JSON body);
- ``hold()`` / ``release()``: requests wait until released; ``delay``: seconds to sleep.
Observations: ``requests`` (bodies), ``headers`` (of each request), ``entered`` (an Event).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MODEL = "fake-model-1"
API_KEY = "sk-test-0123456789-SECRET"


def echo(messages: list[dict[str, str]]) -> str:
    return f"LLM答：{messages[-1]['content'][-40:]}"


def rounds_in(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The history a request carried: (user, assistant) pairs between system and question."""
    middle = messages[1:-1]
    assert [m["role"] for m in middle] == ["user", "assistant"] * (len(middle) // 2)
    return [(middle[i]["content"], middle[i + 1]["content"]) for i in range(0, len(middle), 2)]


class FakeLlm:
    def __init__(self) -> None:
        self.answer: Callable[[list[dict[str, str]]], str] = echo
        self.script: list[tuple[Any, ...]] = []
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.usage: list[dict[str, int]] = []  # what each successful answer reported
        self.entered = threading.Event()
        self._gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"llm_url": self.url, "llm_model": MODEL, "llm_api_key": API_KEY, **extra}

    def env(self) -> dict[str, str]:
        return {"WXBOT_LLM_URL": self.url, "WXBOT_LLM_MODEL": MODEL, "WXBOT_LLM_API_KEY": API_KEY}

    def start(self) -> FakeLlm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def hold(self) -> None:
        self._gate = threading.Event()
        self.entered.clear()

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def wait_entered(self, timeout: float = 10.0) -> None:
        assert self.entered.wait(timeout), "no request reached the fake LLM"

    @property
    def last(self) -> list[dict[str, str]]:
        """The messages of the latest request."""
        return self.requests[-1]["messages"]

    # --- answering ---------------------------------------------------------------------------

    def respond(self, body: Any) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            step = self.script.pop(0) if self.script else None
        if step is not None and step[0] == "status":
            headers = step[2] if len(step) > 2 else {}
            return step[1], headers, json.dumps({"error": {"message": "scripted"}}).encode()
        if step is not None and step[0] == "raw":
            return 200, {}, step[1]
        if step is not None and step[0] == "json":
            return 200, {}, json.dumps(step[1]).encode()
        if step is not None and step[0] == "error":
            return step[1], {}, json.dumps(step[2], ensure_ascii=False).encode("utf-8")
        messages = body["messages"]
        message, finish = self._message(step, messages)
        prompt = sum(len(m["content"]) for m in messages)
        said = sum(len(message.get(k) or "") for k in ("content", "refusal", "reasoning_content"))
        usage = {"prompt_tokens": prompt, "completion_tokens": said, "total_tokens": prompt + said}
        if message.get("content"):
            self.usage.append(usage)
        reply = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        return 200, {}, json.dumps(reply, ensure_ascii=False).encode("utf-8")

    def _message(
        self, step: tuple[Any, ...] | None, messages: list[dict[str, str]]
    ) -> tuple[dict[str, Any], str]:
        """The answer's message object and finish_reason for this request."""
        if step is None:
            return {"role": "assistant", "content": self.answer(messages)}, "stop"
        if step[0] == "message":
            return {"role": "assistant", **step[1]}, step[2] if len(step) > 2 else "stop"
        if step[0] == "finish":
            return {"role": "assistant", "content": step[2]}, step[1]
        finish = "length" if step[0] == "length" else "stop"
        return {"role": "assistant", "content": step[1]}, finish


def _handler(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, {}, b'{"error": "no such route"}')
                return
            with fake._lock:
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
            fake.entered.set()
            gate = fake._gate
            if gate is not None:
                gate.wait(30)
            if fake.delay:
                time.sleep(fake.delay)
            self._send(*fake.respond(body))

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                self.close_connection = True

    return Handler


@pytest.fixture(name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeLlm]:
    """Import ``fake_llm_fixture`` into a test module to use the ``fake_llm`` fixture."""
    fake = FakeLlm().start()
    yield fake
    fake.stop()
