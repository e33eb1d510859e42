"""Optional semantic retrieval: question vectors from an OpenAI-compatible embeddings API.

Wire format (OpenAI, and servers that copy it: a self-hosted bge-m3 behind text-embeddings-
inference / vLLM / Xinference, or hosted APIs): ``POST {url}/embeddings`` with
``{"model": ..., "input": [texts]}`` → ``{"data": [{"index": i, "embedding": [floats]}]}``.

- Questions are embedded in batches when they are imported (``wxbot kb import``) and by a
  background job in any process that finds questions without a vector (taught by chat, the
  admin API). Wordings learned from did-you-mean picks get none: they are exact keys, not
  ranked (freshness.LearnedKeys). Vectors are stored in ``kb_embeddings`` per question key
  and model, and the job bumps the knowledge version so every process loads them.
- A query is embedded within ``WXBOT_EMBEDDING_TIMEOUT`` seconds; on a timeout or any error
  the lexical matcher answers alone.
- Search is a dot product over unit vectors with numpy (``pip install wxbot[embeddings]``);
  without numpy semantic retrieval stays off (logged once).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import requests
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql
from wxbot.qa import store, versions
from wxbot.qa.fusion import Fusion, RankFusion
from wxbot.qa.models import CHUNK, KbEmbedding
from wxbot.qa.text import question_key
from wxbot.redaction import describe
from wxbot.services.http import ReleasingAdapter

if TYPE_CHECKING:
    from wxbot.qa.vectors import VectorIndex

log = logging.getLogger(__name__)

table = KbEmbedding.__table__
BATCH = 64  # texts per request
IMPORT_TIMEOUT = 30.0  # seconds per batch when embedding stored questions
RETRY_AFTER = 60.0  # seconds between background attempts after a failure


class EmbeddingError(Exception):
    pass


class Embedder(Protocol):
    """An embedding service's client, or the local model (wxbot.qa.local_model)."""

    model: str

    def embed(self, texts: list[str], timeout: float) -> list[array]: ...


class EmbeddingClient:
    def __init__(self, url: str, model: str, api_key: str | None = None) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self._session = requests.Session()
        for prefix in ("http://", "https://"):  # a failed call holds no reference cycle
            self._session.mount(prefix, ReleasingAdapter())
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def embed(self, texts: list[str], timeout: float) -> list[array]:
        """Unit vectors (float32 arrays) of ``texts``, in order."""
        try:
            resp = self._session.post(
                self.url, json={"model": self.model, "input": texts}, timeout=timeout
            )
        except requests.Timeout:
            raise EmbeddingError("embeddings request timed out") from None
        except (UnicodeEncodeError, requests.exceptions.InvalidHeader):
            # the key is our only header: one pasted with a newline or a full-width letter
            # cannot be sent (and the error's repr would hold the whole header)
            raise EmbeddingError(
                "WXBOT_EMBEDDING_API_KEY cannot be sent: it has a character not allowed in an"
                " HTTP header"
            ) from None
        except requests.RequestException as exc:
            # the type only: requests' message names the URL (and its query string)
            raise EmbeddingError(f"embeddings service unreachable ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise EmbeddingError(f"embeddings service answered HTTP {resp.status_code}")
        try:
            data = sorted(resp.json()["data"], key=lambda d: d["index"])
            vectors = [_unit(d["embedding"]) for d in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embeddings service answered nonsense ({exc!r})") from None
        if len(vectors) != len(texts) or len({len(v) for v in vectors}) > 1:
            raise EmbeddingError("embeddings service answered the wrong number of vectors")
        return vectors


def _unit(values: Iterable[float]) -> array:
    vec = array("f", values)
    norm = sum(x * x for x in vec) ** 0.5
    if not norm:
        raise ValueError("zero vector")
    return array("f", (x / norm for x in vec))


# -- storage ----------------------------------------------------------------------------------


def load_vectors(conn: Connection, model: str, keys: Iterable[str]) -> dict[str, array]:
    keys = list(set(keys))
    out: dict[str, array] = {}
    for i in range(0, len(keys), CHUNK):
        rows = conn.execute(
            select(table.c.qkey, table.c.vector).where(
                table.c.model == model, table.c.qkey.in_(keys[i : i + CHUNK])
            )
        )
        for key, blob in rows:
            vec = array("f")
            vec.frombytes(blob)
            out[key] = vec
    return out


def save_vectors(conn: Connection, model: str, vectors: dict[str, array], now: float) -> None:
    rows = [
        {"qkey": k, "model": model, "vector": v.tobytes(), "created_at": now}
        for k, v in vectors.items()
    ]
    if is_mysql(conn):
        stmt = mysql_insert(table)
        stmt = stmt.on_duplicate_key_update(vector=stmt.inserted.vector)
    else:
        stmt = sqlite_insert(table).on_conflict_do_nothing()
    for i in range(0, len(rows), CHUNK):
        conn.execute(stmt, rows[i : i + CHUNK])


def embed_missing(engine: Engine, client: Embedder, *, now: float, limit: int | None = None) -> int:
    """Embed stored questions that have no vector for the client's model, in batches; each
    batch is saved and announced (a knowledge version) in its own transaction. Returns the
    number embedded. Learned wordings are not ranked (freshness.LearnedKeys): no vector."""
    with engine.connect() as conn:
        entries = store.load_index_rows(conn)
        keyed = {question_key(q): (e, q) for e, row in entries.items() for q in row.questions}
        have = load_vectors(conn, client.model, keyed)
    missing = [k for k in keyed if k not in have][:limit]
    done = 0
    for i in range(0, len(missing), BATCH):
        keys = missing[i : i + BATCH]
        vectors = client.embed([keyed[k][1] for k in keys], timeout=IMPORT_TIMEOUT)
        with engine.begin() as conn:
            version = versions.bump_version(conn, now)
            save_vectors(conn, client.model, dict(zip(keys, vectors, strict=True)), now)
            versions.log_changes(conn, version, {keyed[k][0] for k in keys}, now)
        done += len(keys)
    return done


# -- search -----------------------------------------------------------------------------------


class Semantic:
    """What the knowledge base needs: an embedder, the vectors, a background filler and the
    rule that fuses the rankings."""

    def __init__(
        self,
        client: Embedder,
        engine: Engine | None,
        timeout: float,
        fusion: Fusion | None = None,
    ) -> None:
        self.client = client
        self.engine = engine
        self.timeout = timeout
        self.fusion: Fusion = fusion or RankFusion()
        from wxbot.qa.vectors import VectorIndex  # numpy: only when semantic retrieval is on

        self.index: VectorIndex = VectorIndex()
        self._busy = threading.Lock()
        self._last_failure = 0.0

    def load(self, conn: Connection, questions: dict[int, list[str]]) -> bool:
        """Load the vectors of these entries into the index; True if some question has none
        yet."""
        keys = {e: _keys(qs) for e, qs in questions.items()}
        found = load_vectors(conn, self.client.model, (k for ks in keys.values() for k in ks))
        for entry_id, ks in keys.items():
            self.index.set_entry(entry_id, [found[k] for k in ks if k in found])
        return any(k not in found for ks in keys.values() for k in ks)

    def rebuild(self, questions: dict[int, list[str]], vectors: dict[str, array]) -> bool:
        """A new index of these entries from vectors already read; True if some question has
        none yet."""
        from wxbot.qa.vectors import VectorIndex

        keys = {e: _keys(qs) for e, qs in questions.items()}
        self.index = VectorIndex.build(
            (e, [vectors[k] for k in ks if k in vectors]) for e, ks in keys.items()
        )
        return any(k not in vectors for ks in keys.values() for k in ks)

    def fill_in_background(self) -> None:
        """Embed questions without a vector, in a thread (one at a time, not too often)."""
        if self.engine is None or time.monotonic() - self._last_failure < RETRY_AFTER:
            return
        if not self._busy.acquire(blocking=False):
            return
        threading.Thread(target=self._fill, name="wxbot-embed", daemon=True).start()

    def _fill(self) -> None:
        try:
            assert self.engine is not None
            embed_missing(self.engine, self.client, now=time.time())
        except Exception as exc:
            self._last_failure = time.monotonic()
            log.warning("embedding stored questions failed (retrying later): %s", describe(exc))
        finally:
            self._busy.release()

    def query(self, text: str, limit: int) -> list[tuple[int, float]]:
        """Entries nearest to ``text``; [] when the service is slow or down."""
        if not len(self.index):
            return []
        try:
            (vec,) = self.client.embed([text], timeout=self.timeout)
        except EmbeddingError as exc:
            log.info("query embedding skipped: %s", exc)
            return []
        return self.index.search(vec, limit)


def _keys(questions: list[str]) -> list[str]:
    """The distinct question keys of an entry, in order."""
    return list(dict.fromkeys(question_key(q) for q in questions))
