"""The segmenter (rjieba, jieba-rs) cuts as the Python jieba does, on every text we measure.

The accuracy figures in README were measured with the Python jieba; the index, the answer
cache and the thresholds calibrated on the dev halves all depend on where words are cut. So
every CJK run of the shipped knowledge, the paraphrase sets and the accuracy sets (questions,
rewordings and unrelated questions) must be cut the same way by both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from wxbot.qa.text import _IDEOGRAPH_RE, _RUN_RE, get_analyzer, normalize

jieba = pytest.importorskip("jieba")  # in the test extra: always there in CI

ROOT = Path(__file__).resolve().parents[1]
CORPORA = [
    *sorted((ROOT / "knowledge").rglob("*.txt")),
    *sorted((ROOT / "knowledge").rglob("*.yaml")),
    *sorted((ROOT / "tests").glob("paraphrases*")),
    ROOT / "tests" / "unrelated_questions.txt",
    *sorted((ROOT / "tests" / "accuracy").iterdir()),
]


def cjk_runs() -> list[str]:
    runs: dict[str, None] = {}
    for path in CORPORA:
        if path.suffix not in (".txt", ".jsonl", ".csv", ".yaml"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            for run in _RUN_RE.findall(normalize(line)):
                if _IDEOGRAPH_RE.match(run):
                    runs[run] = None
    return list(runs)


def test_the_corpora_are_found() -> None:
    assert len(cjk_runs()) > 3_000


def test_rjieba_cuts_every_measured_text_as_jieba_does() -> None:
    jieba.setLogLevel(logging.WARNING)
    reference = jieba.Tokenizer()
    reference.initialize()
    cut = get_analyzer()._cut
    differ = [(run, reference.lcut(run), cut(run)) for run in cjk_runs()]
    differ = [d for d in differ if d[1] != d[2]]
    assert not differ, differ[:20]
