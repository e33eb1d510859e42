"""The question vectors of one process, held once in a float32 matrix and searched by dot
product (numpy).

Rows are only ever appended; replacing or removing an entry frees its rows (owner -1) and a
compaction rebuilds the matrix when more than half of it is free. A search therefore works
on a snapshot (the matrix, its row count and the owners at that moment) without holding the
lock during the product: rows written after the snapshot lie beyond its row count, and a row
freed meanwhile is skipped, as if the change had arrived just before the search.

A large index (COARSE_OVER questions) also keeps every row projected onto its main axes
(a truncated SVD of a sample): a search scans those short rows for COARSE_POOL candidates
and scores only them exactly. At 100k questions of 512 dimensions the full scan reads
200 MB per query (16 ms here); the pre-scan reads a quarter of that and finds the exact top
entry for every bank query (benchmarks/semantic_bench.py).
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)

FREE = -1  # the owner of a row no entry uses any more
GROWTH = 1.5  # capacity factor when appending past the end
COMPACT_OVER = 1024  # rows: smaller matrices are not worth compacting
COARSE_OVER = 20_000  # live rows from which searches pre-scan projected rows
COARSE_POOL = 1000  # candidates the pre-scan hands to the exact scores
COARSE_SAMPLE = 10_000  # rows the axes are fitted on


class VectorIndex:
    """Unit vectors of the entries' questions; ``search`` gives the nearest entries."""

    def __init__(self) -> None:
        self._matrix: np.ndarray | None = None  # (capacity, dim); rows [0, _size) in use
        self._owners = np.empty(0, dtype=np.int64)  # row -> entry id, FREE when freed
        self._size = 0
        self._rows: dict[int, list[int]] = {}  # entry id -> its rows
        self._free = 0  # freed rows below _size
        # (axes (dim, k), projected rows (capacity, k)) once the index is large
        self._coarse: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, entries: Iterable[tuple[int, list[array]]]) -> VectorIndex:
        """An index of many entries at once (one allocation, no growth)."""
        index = cls()
        owners: list[int] = []
        chunks: list[bytes] = []
        dim = None
        for entry_id, vectors in entries:
            for vec in vectors:
                if dim is None:
                    dim = len(vec)
                if len(vec) != dim:
                    log.warning("skipped a vector of %d dimensions (not %d)", len(vec), dim)
                    continue
                index._rows.setdefault(entry_id, []).append(len(owners))
                owners.append(entry_id)
                chunks.append(vec.tobytes())
        if dim is not None:
            flat = np.frombuffer(b"".join(chunks), dtype=np.float32)
            index._matrix = flat.reshape(len(owners), dim).copy()  # writable, owns its memory
            index._owners = np.array(owners, dtype=np.int64)
            index._size = len(owners)
            index._fit_coarse()
        return index

    def __len__(self) -> int:
        return self._size - self._free

    @property
    def dim(self) -> int | None:
        """The dimension of the vectors held (None before the first)."""
        matrix = self._matrix
        return None if matrix is None else int(matrix.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the matrix and the owners (capacity included)."""
        held = self._owners.nbytes
        if self._coarse is not None:
            held += self._coarse[0].nbytes + self._coarse[1].nbytes
        return held + (self._matrix.nbytes if self._matrix is not None else 0)

    def set_entry(self, entry_id: int, vectors: Iterable[array]) -> None:
        """Replace the vectors of an entry (none: it has no vector yet)."""
        with self._lock:
            self._release(entry_id)
            rows = [self._append(entry_id, vec) for vec in vectors]
            rows = [r for r in rows if r is not None]
            if rows:
                self._rows[entry_id] = rows
            if not self._maybe_compact() and self._coarse is None:
                self._fit_coarse()  # once, when teaching by hand reaches the size

    def remove_entry(self, entry_id: int) -> None:
        with self._lock:
            self._release(entry_id)
            self._maybe_compact()

    def search(self, query: array, limit: int) -> list[tuple[int, float]]:
        """(entry id, cosine) best first, one per entry."""
        with self._lock:
            matrix, owners, size, coarse = self._matrix, self._owners, self._size, self._coarse
        if matrix is None or size == 0 or matrix.shape[1] != len(query):
            return []
        q = np.frombuffer(query, dtype=np.float32)
        if coarse is not None and size > COARSE_POOL:
            axes, projected = coarse
            near = projected[:size] @ (q @ axes)
            rows = np.argpartition(-near, COARSE_POOL)[:COARSE_POOL]
            best = _best_entries(matrix[rows] @ q, owners, limit, limit * 4, rows)
            if len(best) == limit:
                return list(best.items())
        scores = matrix[:size] @ q
        best = _best_entries(scores, owners, limit, want=limit * 4)
        if len(best) < limit and size > limit * 4:  # the top rows were crowded or freed
            best = _best_entries(scores, owners, limit, want=size)
        return list(best.items())

    # -- under the lock ---------------------------------------------------------------------

    def _release(self, entry_id: int) -> None:
        """Free the entry's rows: owner first, then the vector (a zero row scores 0, so freed
        rows do not crowd the top of a later search)."""
        rows = self._rows.pop(entry_id, ())
        for row in rows:
            self._owners[row] = FREE
            self._matrix[row] = 0.0  # type: ignore[index]
            if self._coarse is not None:
                self._coarse[1][row] = 0.0
        self._free += len(rows)

    def _append(self, entry_id: int, vec: array) -> int | None:
        if self._matrix is None:
            self._matrix = np.empty((16, len(vec)), dtype=np.float32)
            self._owners = np.full(16, FREE, dtype=np.int64)
        if len(vec) != self._matrix.shape[1]:
            log.warning(
                "skipped a vector of %d dimensions (not %d)", len(vec), self._matrix.shape[1]
            )
            return None
        if self._size == len(self._matrix):  # a new, larger matrix: snapshots keep the old one
            capacity = max(16, int(self._size * GROWTH))
            matrix = np.empty((capacity, self._matrix.shape[1]), dtype=np.float32)
            matrix[: self._size] = self._matrix[: self._size]
            owners = np.full(capacity, FREE, dtype=np.int64)
            owners[: self._size] = self._owners[: self._size]
            if self._coarse is not None:
                axes, old = self._coarse
                projected = np.zeros((capacity, axes.shape[1]), dtype=np.float32)
                projected[: self._size] = old[: self._size]
                self._coarse = axes, projected
            self._matrix, self._owners = matrix, owners
        row = self._size
        self._matrix[row] = np.frombuffer(vec, dtype=np.float32)
        if self._coarse is not None:
            self._coarse[1][row] = self._matrix[row] @ self._coarse[0]
        self._owners[row] = entry_id
        self._size += 1
        return row

    def _maybe_compact(self) -> bool:
        """Rebuild without the freed rows once they are more than half (new arrays: a search
        under way keeps the old ones). True if it did."""
        if self._matrix is None or self._size < COMPACT_OVER or self._free * 2 <= self._size:
            return False
        live = np.flatnonzero(self._owners[: self._size] != FREE)
        self._matrix = self._matrix[live]
        self._owners = self._owners[live]
        self._size, self._free = len(live), 0
        self._rows = {}
        for row, entry in enumerate(self._owners.tolist()):
            self._rows.setdefault(entry, []).append(row)
        self._coarse = None
        self._fit_coarse()
        return True

    def _fit_coarse(self) -> None:
        """Fit the main axes on a sample of the live rows and project every row onto them,
        when the index is large enough for the pre-scan to pay (about a second at 100k)."""
        if self._matrix is None or len(self) < COARSE_OVER:
            self._coarse = None
            return
        dim = self._matrix.shape[1]
        live = np.flatnonzero(self._owners[: self._size] != FREE)
        sample = np.random.default_rng(0).choice(live, min(COARSE_SAMPLE, len(live)), False)
        # the rows are unit vectors searched by dot product: no centring, the axes of the
        # uncentred sample keep the products (the dominant shared direction included)
        _, _, vt = np.linalg.svd(self._matrix[np.sort(sample)], full_matrices=False)
        axes = np.ascontiguousarray(vt[: max(128, dim // 4)].T, dtype=np.float32)
        # rows past the size hold whatever np.empty left there: left 0 until appended
        projected = np.zeros((len(self._matrix), axes.shape[1]), dtype=np.float32)
        projected[: self._size] = self._matrix[: self._size] @ axes
        self._coarse = axes, projected


def _best_entries(
    scores: np.ndarray,
    owners: np.ndarray,
    limit: int,
    want: int,
    rows: np.ndarray | None = None,
) -> dict[int, float]:
    """The ``limit`` best entries among the ``want`` best rows (several rows of one entry
    count once; freed rows not at all). ``scores[i]`` is row ``rows[i]``'s (default: i's)."""
    if len(scores) > want:  # partial sort: at 100k questions a full one is 8 ms
        part = np.argpartition(-scores, want)[:want]
        top = part[np.argsort(-scores[part])]
    else:
        top = np.argsort(-scores)
    best: dict[int, float] = {}
    for i in top.tolist():
        entry = int(owners[i if rows is None else rows[i]])
        if entry != FREE and entry not in best:
            best[entry] = float(scores[i])
            if len(best) == limit:
                break
    return best
