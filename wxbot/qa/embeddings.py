"""Optional semantic retrieval: question vectors from an OpenAI-compatible embeddings API.

Wire format (OpenAI, and servers that copy it: a self-hosted bge-m3 behind text-embeddings-
inference / vLLM / Xinference, or hosted APIs): ``POST {url}/embeddings`` with
``{"model": ..., "input": [texts]}`` → ``{"data": [{"index": i, "embedding": [floats]}]}``.

- Questions are embedded in batches when they are imported (``wxbot kb import``) and by a
  background job in any process that finds questions without a vector (taught by chat, the
  admin API). Wordings learned from did-you-mean picks get none: they are exact keys, not
  ranked (freshness.LearnedKeys). Vectors are stored in ``kb_embeddings`` per question key
  and model, and the job bumps the knowledge version so every process loads them. A job that
  failed is tried again after a pause (RETRY_AFTER, or a 429's Retry-After) by the next
  question asked. Vectors of another dimension than the model's stored ones (the model behind
  the name changed) are not stored: only a new WXBOT_EMBEDDING_MODEL settles that.
- A query is embedded within ``WXBOT_EMBEDDING_TIMEOUT`` seconds; on a timeout or any error
  (an answer of the wrong shape included) the lexical matcher answers alone.
- Search is a dot product over unit vectors with numpy (``pip install wxbot[embeddings]``);
  without numpy semantic retrieval stays off (logged once).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import requests
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from urllib3.util.retry import Retry

from wxbot.db import is_mysql
from wxbot.qa import store, versions
from wxbot.qa.fusion import Fusion, RankFusion
from wxbot.qa.models import CHUNK, KbEmbedding
from wxbot.qa.text import question_key
from wxbot.redaction import describe
from wxbot.services.http import NOT_JSON, AnswerTooLarge, BoundedAdapter, json_or_not, make_session

if TYPE_CHECKING:
    from wxbot.qa.vectors import VectorIndex

log = logging.getLogger(__name__)

table = KbEmbedding.__table__
BATCH = 64  # texts per request
IMPORT_TIMEOUT = 30.0  # seconds per batch when embedding stored questions
RETRY_AFTER = 60.0  # seconds between background attempts after a failure
# after the service answered another dimension than the stored vectors': the model behind
# the name changed, which only the operator can settle
RETRY_AFTER_NEW_DIMENSION = 600.0


class EmbeddingError(Exception):
    """The service could not give the vectors; ``retry_after``: seconds it asked us to wait
    (a 429), during which this client makes no call."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Embedder(Protocol):
    """An embedding service's client, or the local model (wxbot.qa.local_model)."""

    model: str

    def embed(self, texts: list[str], timeout: float) -> list[array]: ...


class EmbeddingClient:
    """One attempt per call, within ``timeout`` for the whole answer (services/http.py reads
    the body by the deadline and up to a size: requests' own timeout is per socket read, so a
    service dripping its answer held a question's transaction for as long as it dripped).
    Redirects are not followed (a 302 turned the POST into a GET, a 307 repeated it
    elsewhere). A 429 pauses the calls for its Retry-After. Every failure is an
    EmbeddingError whose message says what to check, never the key nor the provider's
    message (it may quote the texts)."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self.clock = clock
        self._cool_until = 0.0
        # one text (a question asked) and batches (stored questions) get their own cap
        self._sessions = {
            False: _session(api_key, MAX_QUERY_ANSWER, retry=False),
            True: _session(api_key, MAX_BATCH_ANSWER, retry=True),
        }

    def embed(self, texts: list[str], timeout: float) -> list[array]:
        """Unit vectors (float32 arrays) of ``texts``, in order."""
        wait = self._cool_until - self.clock()
        if wait > 0:
            raise EmbeddingError(f"rate limited (HTTP 429), paused {wait:.0f}s more", wait)
        try:
            resp = self._sessions[len(texts) > 1].post(
                self.url,
                json={"model": self.model, "input": texts},
                timeout=timeout,
                allow_redirects=False,
            )
        except AnswerTooLarge:
            raise EmbeddingError(
                f"embeddings service answered more than {MAX_BATCH_ANSWER} bytes"
                if len(texts) > 1
                else f"embeddings service answered more than {MAX_QUERY_ANSWER} bytes"
                " (the answer is longer than any vector)"
            ) from None
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
        body = json_or_not(resp.content)
        if resp.status_code == 429:
            wait = min(_retry_after(resp.headers.get("Retry-After")), COOL_DOWN_MAX)
            self._cool_until = max(self._cool_until, self.clock() + wait)
            raise EmbeddingError(f"rate limited (HTTP 429), pausing {wait:.0f}s", wait)
        if resp.status_code != 200:
            raise EmbeddingError(_refusal(resp.status_code, body))
        return _vectors(body, len(texts))


MAX_QUERY_ANSWER = 2 * 1024 * 1024  # one vector of 4,096 dimensions is ~100 kB of JSON
MAX_BATCH_ANSWER = 64 * 1024 * 1024  # BATCH of them, pretty-printed
COOL_DOWN_DEFAULT = 20.0  # seconds without calls after a 429 without a Retry-After
COOL_DOWN_MAX = 300.0
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _session(api_key: str | None, max_answer: int, retry: bool) -> requests.Session:
    session = make_session(retry_reads=False)  # a connection not opened is tried once more
    for prefix in ("http://", "https://"):
        adapter = session.get_adapter(prefix)
        if isinstance(adapter, BoundedAdapter):
            adapter.max_answer = max_answer
            if not retry:  # a question's budget is for one attempt
                adapter.max_retries = Retry(0, read=False, redirect=0)
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    return session


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value else COOL_DOWN_DEFAULT
    except ValueError:  # an HTTP date: not worth parsing for a pause this short
        return COOL_DOWN_DEFAULT
    return seconds if 0 <= seconds < math.inf else COOL_DOWN_DEFAULT


def _error_code(body: Any) -> str:
    """The provider's error code or type (``{"error": {"code": ...}}``), if it is a plain
    word; its message is never kept (it may quote the texts, or the key)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        for key in ("code", "type"):
            value = error.get(key)
            if isinstance(value, (str, int)) and _SAFE_CODE.fullmatch(str(value)):
                return f" ({value})"
    return ""


def _refusal(status: int, body: Any) -> str:
    where = f"embeddings service answered HTTP {status}"
    if 300 <= status < 400:  # the Location is not logged: it is the provider's, not ours
        return f"{where}, a redirect (set WXBOT_EMBEDDING_URL to where it redirects)"
    if status in (401, 403):
        return f"{where}{_error_code(body)} (check WXBOT_EMBEDDING_API_KEY)"
    if status in (404, 405):
        return (
            f"{where}{_error_code(body)} (is WXBOT_EMBEDDING_URL the API's base, the part"
            " before /embeddings, e.g. http://host:8080/v1?)"
        )
    return where + _error_code(body)


def _vectors(body: Any, count: int) -> list[array]:
    """The unit vectors of an answer for ``count`` texts, each at its ``index`` (the order
    given when the service sends none), or EmbeddingError."""
    if body is NOT_JSON:
        raise EmbeddingError("embeddings service answered with something that is not JSON")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        code = _error_code(body)
        if code:  # an error sent with 200 (some gateways do)
            raise EmbeddingError(f"embeddings service answered HTTP 200 with an error{code}")
        raise EmbeddingError("embeddings service answered JSON without a list of vectors (data)")
    if len(data) != count:
        raise EmbeddingError(
            f"embeddings service answered the wrong number of vectors ({len(data)} for {count})"
        )
    slots: list[array | None] = [None] * count
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise EmbeddingError("embeddings service answered data that are no vector objects")
        index = item.get("index", position)
        if type(index) is not int or not 0 <= index < count or slots[index] is not None:
            # two vectors "index 0" were stored as two questions' vectors
            raise EmbeddingError(
                "embeddings service answered vectors with a duplicate, missing or"
                f" out-of-range index ({index!r})"
            )
        vec = _unit(item.get("embedding"))
        if vec is None:
            raise EmbeddingError(
                f"embeddings service answered a vector that is not one (vector {index}: not a"
                " list of finite numbers, or all zeros)"
            )
        slots[index] = vec
    vectors = [v for v in slots if v is not None]
    if len({len(v) for v in vectors}) > 1:
        raise EmbeddingError("embeddings service answered vectors of different dimensions")
    return vectors


def _unit(values: Any) -> array | None:
    """``values`` scaled to length 1, as float32; None unless it is a non-empty list of
    finite numbers, not all zero (NaN, or a value beyond float32 such as 1e39, was stored as
    a vector of NaN, which scores NaN against every query)."""
    if not isinstance(values, list) or not values:
        return None
    if not all(type(x) in (int, float) for x in values):  # not bool, str, None, lists
        return None
    floats = [float(x) for x in values]
    if not all(math.isfinite(x) for x in floats):
        return None
    scale = max(abs(x) for x in floats)
    if not scale:
        return None
    scaled = [x / scale for x in floats]  # no overflow in the sum of squares
    norm = math.sqrt(sum(x * x for x in scaled))
    return array("f", (x / norm for x in scaled))


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
    # The dimension of the model's stored vectors (the most of them). The service may answer
    # another under the same name (TEI restarted with another model): those vectors would be
    # stored beside the old ones and each index would keep one size and skip the other.
    dims = Counter(len(v) for v in have.values())
    dim = dims.most_common(1)[0][0] if dims else None
    done = 0
    for i in range(0, len(missing), BATCH):
        keys = missing[i : i + BATCH]
        vectors = client.embed([keyed[k][1] for k in keys], timeout=IMPORT_TIMEOUT)
        if dim is None:
            dim = len(vectors[0])
        elif len(vectors[0]) != dim:
            raise EmbeddingError(
                new_dimension(client.model, len(vectors[0]), dim), RETRY_AFTER_NEW_DIMENSION
            )
        with engine.begin() as conn:
            version = versions.bump_version(conn, now)
            save_vectors(conn, client.model, dict(zip(keys, vectors, strict=True)), now)
            versions.log_changes(conn, version, {keyed[k][0] for k in keys}, now)
        done += len(keys)
    return done


def new_dimension(model: str, new: int, stored: int) -> str:
    return (
        f"the embeddings service now answers vectors of {new} dimensions for model {model!r},"
        f" whose stored vectors have {stored}: the model behind the name changed? Nothing of"
        " the new size is stored or searched. Set WXBOT_EMBEDDING_MODEL to the new model's name"
        " (vectors are kept per name: every question is embedded again), or restore the model"
    )


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
        self._paused_until = 0.0  # (monotonic) no background attempt before, after a failure
        # Bumped whenever the index learns that questions have no vector. A job that failed
        # was tried again only when a later change of the knowledge noticed missing vectors
        # again: after an import during an outage, never. Now every question asked retries
        # it (after the pause) until a job that started after the last bump succeeds.
        self._missing = 0
        self._filled = 0  # the value of _missing the last successful job started at
        self._warned_at = -math.inf  # the last warning about the query's dimension

    def load(self, conn: Connection, questions: dict[int, list[str]]) -> bool:
        """Load the vectors of these entries into the index; True if some question has none
        yet."""
        keys = {e: _keys(qs) for e, qs in questions.items()}
        found = load_vectors(conn, self.client.model, (k for ks in keys.values() for k in ks))
        for entry_id, ks in keys.items():
            self.index.set_entry(entry_id, [found[k] for k in ks if k in found])
        return self._note_missing(any(k not in found for ks in keys.values() for k in ks))

    def rebuild(self, questions: dict[int, list[str]], vectors: dict[str, array]) -> bool:
        """A new index of these entries from vectors already read; True if some question has
        none yet."""
        from wxbot.qa.vectors import VectorIndex

        keys = {e: _keys(qs) for e, qs in questions.items()}
        self.index = VectorIndex.build(
            (e, [vectors[k] for k in ks if k in vectors]) for e, ks in keys.items()
        )
        return self._note_missing(any(k not in vectors for ks in keys.values() for k in ks))

    def _note_missing(self, missing: bool) -> bool:
        if missing:
            self._missing += 1
        return missing

    def retry_missing(self) -> None:
        """Start the background job again if questions still lack a vector after it failed
        (cheap: called for every question asked)."""
        if self._filled != self._missing and time.monotonic() >= self._paused_until:
            self.fill_in_background()

    def fill_in_background(self) -> None:
        """Embed questions without a vector, in a thread (one at a time, not too often)."""
        if self.engine is None or time.monotonic() < self._paused_until:
            return
        if not self._busy.acquire(blocking=False):
            return
        threading.Thread(target=self._fill, name="wxbot-embed", daemon=True).start()

    def _fill(self) -> None:
        started_at = self._missing
        try:
            assert self.engine is not None
            embed_missing(self.engine, self.client, now=time.time())
            self._filled = started_at
        except Exception as exc:
            pause = RETRY_AFTER
            if isinstance(exc, EmbeddingError) and exc.retry_after:
                pause = max(pause, exc.retry_after)  # a 429's Retry-After
            self._paused_until = time.monotonic() + pause
            log.warning(
                "embedding stored questions failed (retrying in %.0fs): %s", pause, describe(exc)
            )
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
        dim = self.index.dim
        if dim is not None and len(vec) != dim:  # searched, it would find nothing, silently
            now = time.monotonic()
            if now - self._warned_at >= RETRY_AFTER_NEW_DIMENSION:
                self._warned_at = now
                log.warning("%s", new_dimension(self.client.model, len(vec), dim))
            return []
        return self.index.search(vec, limit)


def _keys(questions: list[str]) -> list[str]:
    """The distinct question keys of an entry, in order."""
    return list(dict.fromkeys(question_key(q) for q in questions))
