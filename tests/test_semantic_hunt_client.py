"""The embeddings client against a service that misbehaves as real providers do: error
statuses, answers of the wrong shape, NaN and strings in vectors, a drip, an enormous body, a
redirect. Every one is an EmbeddingError with a reason an operator can act on (the query then
falls back to words), never another exception (the user got the system-error apology)."""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wxbot.qa.embeddings import EmbeddingClient, EmbeddingError

Answer = Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]


class Hostile:
    """A local server whose answer each test writes (``answer(handler, body)``)."""

    def __init__(self) -> None:
        self.answer: Answer = ok
        self.hits = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hostile.hits += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    hostile.answer(self, body)

            do_GET = do_POST  # noqa: N815 - a redirect turned into a GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def vectors_of(body: dict[str, Any], dim: int = 4) -> list[list[float]]:
    return [[1.0 + i, 0.5, 0.0, 2.0][:dim] for i, _ in enumerate(body["input"])]


def ok(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    data = [{"index": i, "embedding": v} for i, v in enumerate(vectors_of(body))]
    send(handler, 200, json.dumps({"data": data}).encode())


def with_data(make: Callable[[dict[str, Any]], Any]) -> Answer:
    def answer(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        send(handler, 200, json.dumps({"data": make(body)}).encode())

    return answer


def raw(status: int, payload: bytes, **headers: str) -> Answer:
    def answer(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        send(handler, status, payload, **headers)

    return answer


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


def client(server: Hostile) -> EmbeddingClient:
    return EmbeddingClient(server.url, "m", "sk-secret")


def refused(server: Hostile, texts: list[str] | None = None, timeout: float = 2.0) -> str:
    with pytest.raises(EmbeddingError) as caught:
        client(server).embed(texts or ["a", "b"], timeout=timeout)
    message = str(caught.value)
    assert "sk-secret" not in message
    return message


def test_a_good_answer_is_unit_vectors_in_index_order(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = with_data(
        lambda body: [{"index": i, "embedding": [float(i + 1), 0, 0]} for i in (2, 0, 1)]
    )
    got = client(hostile).embed(["a", "b", "c"], timeout=2)
    assert [list(v) for v in got] == [[1.0, 0, 0]] * 3


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in the JSON parser
        b"<html>502 Bad Gateway</html>",
        b"\xff\xfe not json",
    ],
)
def test_an_answer_that_is_not_json(hostile, payload) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(200, payload)
    assert "not JSON" in refused(hostile)


@pytest.mark.parametrize(
    "make",
    [
        lambda body: [{"index": 0, "embedding": [1, 0]}, {"index": 0, "embedding": [0, 1]}],
        lambda body: [{"index": 0, "embedding": [1, 0]}, {"index": 2, "embedding": [0, 1]}],
        lambda body: [{"index": 1, "embedding": [1, 0]}, {"index": -1, "embedding": [0, 1]}],
        lambda body: [{"index": "0", "embedding": [1, 0]}, {"index": 1, "embedding": [0, 1]}],
        lambda body: [{"index": 0.0, "embedding": [1, 0]}, {"index": 1, "embedding": [0, 1]}],
        lambda body: [{"index": True, "embedding": [1, 0]}, {"index": 0, "embedding": [0, 1]}],
    ],
)
def test_duplicate_missing_or_odd_indexes_are_refused(hostile, make) -> None:  # type: ignore[no-untyped-def]
    """Two vectors both "index 0" were stored as the first and second question's (the
    second question got a vector of the first one's text, or of nothing)."""
    hostile.answer = with_data(make)
    assert "index" in refused(hostile)


def test_indexes_left_out_mean_the_order_given(hostile) -> None:  # type: ignore[no-untyped-def]
    """Some compatible servers leave "index" out: the order is then the only one there is."""
    hostile.answer = with_data(lambda body: [{"embedding": [1, 0]}, {"embedding": [0, 2]}])
    got = client(hostile).embed(["a", "b"], timeout=2)
    assert [list(v) for v in got] == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    "vector",
    [
        [math.nan, 1.0],
        [math.inf, 1.0],
        ["0.1", 0.2],
        [None, 0.2],
        [True, False],
        [[0.1], 0.2],
        [],
        [0.0, 0.0],
        "0.1,0.2",
        {"0": 0.1},
        None,
    ],
)
def test_vectors_that_are_no_vectors_are_refused(hostile, vector) -> None:  # type: ignore[no-untyped-def]
    """NaN was stored as a vector of NaN (scoring NaN against every query, which then put
    arbitrary entries first in the fused ranking)."""
    hostile.answer = with_data(
        lambda body: [{"index": 0, "embedding": vector}, {"index": 1, "embedding": [1.0, 0.0]}]
    )
    assert "vector" in refused(hostile)


def test_python_json_nan_and_infinity_literals(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(200, b'{"data": [{"index": 0, "embedding": [NaN, Infinity]}]}')
    assert "vector" in refused(hostile, ["a"])


def test_large_finite_values_keep_their_direction(hostile) -> None:  # type: ignore[no-untyped-def]
    """Values beyond float32 (3e200, 4e200; 1e39) were turned into a vector of NaN."""
    hostile.answer = with_data(lambda body: [{"index": 0, "embedding": [3e200, 4e200]}])
    (vec,) = client(hostile).embed(["a"], timeout=2)
    assert list(vec) == pytest.approx([0.6, 0.8])
    hostile.answer = with_data(lambda body: [{"index": 0, "embedding": [1e39, 0.0]}])
    (vec,) = client(hostile).embed(["a"], timeout=2)
    assert list(vec) == [1.0, 0.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda body: [{"index": 0, "embedding": [1, 0]}],  # one short
        lambda body: [{"index": i, "embedding": [1, 0]} for i in range(3)],  # one too many
        lambda body: [{"index": 0, "embedding": [1, 0]}, {"index": 1, "embedding": [1, 0, 0]}],
        lambda body: {"0": [1, 0]},
        lambda body: "vectors",
        lambda body: None,
        lambda body: [[1, 0], [0, 1]],  # bare lists, no objects
    ],
)
def test_data_of_the_wrong_shape(hostile, make) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = with_data(make)
    refused(hostile)


def test_no_data_at_all(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(200, b'["a list"]')
    refused(hostile)
    hostile.answer = raw(200, b'{"object": "list"}')
    refused(hostile)


def test_an_error_sent_with_200_names_its_code(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(
        200, b'{"error": {"message": "quota sk-secret", "code": "quota_exceeded"}}'
    )
    message = refused(hostile)
    assert "quota_exceeded" in message


def test_error_statuses_say_what_to_check(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(401, b'{"error": {"message": "Incorrect API key provided: sk-secret"}}')
    assert "WXBOT_EMBEDDING_API_KEY" in refused(hostile)
    hostile.answer = raw(404, b"Not Found")
    assert "WXBOT_EMBEDDING_URL" in refused(hostile)
    body = b'{"error": {"message": "The model `m` does not exist", "code": "model_not_found"}}'
    hostile.answer = raw(400, body)
    message = refused(hostile)
    assert "HTTP 400" in message and "model_not_found" in message and "does not" not in message
    hostile.answer = raw(503, b"upstream down")
    assert "HTTP 503" in refused(hostile)


def test_a_redirect_is_not_followed(hostile) -> None:  # type: ignore[no-untyped-def]
    """requests turned a 302's POST into a GET (an unhelpful error) and repeated a 307's
    POST wherever it pointed."""
    hostile.answer = raw(307, b"", Location="http://127.0.0.1:9/v1/embeddings")
    message = refused(hostile)
    assert "redirect" in message and "WXBOT_EMBEDDING_URL" in message
    assert hostile.hits == 1


def test_a_rate_limit_pauses_the_calls_for_its_retry_after(hostile) -> None:  # type: ignore[no-untyped-def]
    """A 429 was followed by one more call per question asked, each refused again."""
    hostile.answer = raw(429, b"{}", Retry_After="30")
    c = client(hostile)
    with pytest.raises(EmbeddingError) as caught:
        c.embed(["a"], timeout=2)
    assert "429" in str(caught.value) and caught.value.retry_after == 30
    hostile.answer = ok
    with pytest.raises(EmbeddingError, match="rate limited"):
        c.embed(["a"], timeout=2)
    assert hostile.hits == 1  # no second call while the pause runs
    c._cool_until = 0.0  # the pause over
    assert len(c.embed(["a"], timeout=2)) == 1


def test_a_rate_limit_without_retry_after_pauses_a_little(hostile) -> None:  # type: ignore[no-untyped-def]
    hostile.answer = raw(429, b"{}")
    with pytest.raises(EmbeddingError) as caught:
        client(hostile).embed(["a"], timeout=2)
    assert caught.value.retry_after and 0 < caught.value.retry_after <= 60


def test_a_drip_is_cut_off_at_the_timeout(hostile) -> None:  # type: ignore[no-untyped-def]
    """requests' timeout is per socket read: an answer dripping a byte every 0.1 s held a
    0.5 s query (and the user's transaction) for as long as it dripped."""

    def drip(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        payload = json.dumps({"data": [{"index": 0, "embedding": [0.5] * 100}]}).encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        for byte in payload:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.1)

    hostile.answer = drip
    started = time.monotonic()
    refused(hostile, ["a"], timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_an_enormous_answer_is_not_read_whole(hostile) -> None:  # type: ignore[no-untyped-def]
    def flood(handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"data": [{"index": 0, "embedding": [')
        chunk = b"0.1," * 65536
        for _ in range(200):  # 50 MB
            handler.wfile.write(chunk)

    hostile.answer = flood
    assert "longer" in refused(hostile, ["a"], timeout=30)
