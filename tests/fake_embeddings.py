"""A local stand-in for an OpenAI-compatible embeddings API (``POST /embeddings``).

It speaks the real wire format (``{"model", "input": [...]}`` → ``{"object": "list",
"data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}``) and computes
deterministic vectors: character unigrams and bigrams hashed into DIM dimensions, plus one
dimension per *concept* in ``concepts`` (word → concept name), weighted heavily, which is how
tests play a model that knows 「取款机」 and 「ATM」 are the same thing.

Knobs: ``down`` (answer 503), ``delay`` (seconds before answering), ``requests`` (bodies
received), ``auth`` (Authorization headers received).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIM = 256
CONCEPT_WEIGHT = 6.0


def _bucket(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") % DIM


class FakeEmbeddings:
    def __init__(self) -> None:
        self.down = False
        self.delay = 0.0
        self.concepts: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def vector(self, text: str) -> list[float]:
        vec = [0.0] * (DIM + 16)
        compact = "".join(text.lower().split())
        for gram in [*compact, *(compact[i : i + 2] for i in range(len(compact) - 1))]:
            vec[_bucket(gram)] += 1.0
        for word, concept in self.concepts.items():
            if word in compact:
                vec[DIM + _bucket(concept) % 16] += CONCEPT_WEIGHT
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.auth.append(self.headers.get("Authorization", ""))
                if fake.delay:
                    time.sleep(fake.delay)
                if self.path != "/v1/embeddings" or fake.down:
                    self.send_response(503 if fake.down else 404)
                    self.end_headers()
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake.vector(t)}
                    for i, t in enumerate(inputs)
                ]
                data.reverse()  # clients must order by "index", not by position
                out = json.dumps(
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": 0, "total_tokens": 0},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Handler
