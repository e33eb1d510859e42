"""The in-memory vector index: one matrix, entries replaced and removed in place, freed rows
compacted, and searches that stay right across those changes."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from wxbot.qa import vectors
from wxbot.qa.vectors import VectorIndex


def unit(*values: float) -> array:
    vec = np.array(values, dtype=np.float32)
    return array("f", (vec / np.linalg.norm(vec)).tolist())


EAST, NORTH, WEST = unit(1, 0, 0), unit(0, 1, 0), unit(-1, 0.1, 0)


def test_build_and_search_one_result_per_entry() -> None:
    index = VectorIndex.build([(1, [EAST, unit(1, 0.1, 0)]), (2, [NORTH]), (3, [WEST])])
    assert len(index) == 4
    found = index.search(unit(1, 0.05, 0), 3)
    assert [e for e, _ in found] == [1, 2, 3]  # entry 1's two rows count once
    assert found[0][1] == pytest.approx(0.9997, abs=1e-3)
    assert index.nbytes >= 4 * 3 * 4  # one float32 matrix, no second copy per vector


def test_replacing_and_removing_entries() -> None:
    index = VectorIndex()
    index.set_entry(1, [EAST])
    index.set_entry(2, [NORTH])
    assert index.search(EAST, 1)[0][0] == 1
    index.set_entry(1, [WEST])  # replaced: its old row is freed, not found again
    assert [e for e, _ in index.search(EAST, 2)] == [2, 1]
    index.remove_entry(2)
    assert [e for e, _ in index.search(NORTH, 5)] == [1]
    assert len(index) == 1
    index.set_entry(3, [])  # an entry without vectors yet
    assert len(index) == 1


def test_freed_rows_are_compacted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vectors, "COMPACT_OVER", 8)
    index = VectorIndex()
    for entry in range(10):
        index.set_entry(entry, [unit(1, entry, 0)])
    for entry in range(7):
        index.remove_entry(entry)
    # compacted on the sixth removal (6 of 10 rows free), then one more row freed
    assert (index._size, index._free, len(index)) == (4, 1, 3)
    assert {e for e, _ in index.search(NORTH, 5)} == {7, 8, 9}
    index.set_entry(8, [EAST])  # and changes after a compaction still land
    assert index.search(EAST, 1)[0][0] == 8


def test_a_crowded_top_falls_back_to_the_whole_ranking() -> None:
    """Many questions of one entry near the query must not hide the other entries."""
    index = VectorIndex.build([(1, [unit(1, i / 1000, 0) for i in range(40)]), (2, [WEST])])
    assert [e for e, _ in index.search(EAST, 2)] == [1, 2]


def test_vectors_of_another_size_are_skipped_and_queries_too() -> None:
    index = VectorIndex()
    index.set_entry(1, [EAST])
    index.set_entry(2, [array("f", [1.0, 0.0])])  # another model's size: not stored
    assert len(index) == 1
    assert index.search(array("f", [1.0, 0.0]), 3) == []


def test_a_search_holds_on_to_its_snapshot_while_the_index_grows() -> None:
    index = VectorIndex()
    index.set_entry(1, [EAST])
    matrix_before = index._matrix
    for entry in range(2, 100):  # grows past the first capacity: a new matrix
        index.set_entry(entry, [unit(0, 1, entry)])
    assert index._matrix is not matrix_before
    assert matrix_before is not None and matrix_before[0].tolist() == list(EAST)
    assert index.search(EAST, 1)[0][0] == 1


def random_units(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows[:, 0] += 1.5  # a shared direction, as sentence vectors have
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def as_array(row: np.ndarray) -> array:
    return array("f", row.astype(np.float32).tobytes())


def test_a_large_index_pre_scans_and_still_finds_the_exact_best(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vectors, "COARSE_OVER", 300)
    monkeypatch.setattr(vectors, "COARSE_POOL", 60)
    rng = np.random.default_rng(1)
    rows = random_units(rng, 600, 32)
    index = VectorIndex.build((e, [as_array(rows[e])]) for e in range(600))
    assert index._coarse is not None
    for q in random_units(rng, 30, 32):
        exact = np.argsort(-(rows @ q))[:3].tolist()
        assert [e for e, _ in index.search(as_array(q), 3)] == exact
    # changes reach the projected rows too: a replaced entry is found where it went, a
    # removed one not at all, and new entries past the old capacity are searched
    index.set_entry(5, [as_array(rows[7])])
    index.remove_entry(7)
    for e in range(600, 700):
        index.set_entry(e, [as_array(v) for v in random_units(rng, 1, 32)])
    assert index.search(as_array(rows[7]), 1)[0][0] == 5
    newest = index._matrix[index._rows[699][0]]  # type: ignore[index]
    assert index.search(as_array(newest), 1)[0][0] == 699


def test_teaching_up_to_the_size_starts_the_pre_scan_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vectors, "COARSE_OVER", 50)
    monkeypatch.setattr(vectors, "COARSE_POOL", 10)
    rng = np.random.default_rng(2)
    rows = random_units(rng, 60, 16)
    index = VectorIndex()
    for e in range(49):
        index.set_entry(e, [as_array(rows[e])])
    assert index._coarse is None  # small: the full scan is cheap
    index.set_entry(49, [as_array(rows[49])])
    fitted = index._coarse
    assert fitted is not None
    index.set_entry(50, [as_array(rows[50])])
    assert index._coarse is not None and index._coarse[0] is fitted[0]  # not fitted again
    assert index.search(as_array(rows[50]), 1)[0][0] == 50
