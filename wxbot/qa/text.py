"""Text normalisation and tokenisation for matching Chinese (and some English) questions.

``normalize`` folds the differences users do not mean: full/half width (NFKC), case,
punctuation and symbols, traditional vs simplified characters. ``question_key`` is the identity
of a question (re-importing or re-teaching the same question updates one entry).
``Analyzer.terms`` turns normalised text into index terms: jieba words, the bigrams inside long
words and the characters of words (function words stay whole: see STOPWORDS) (the n-grams make typos and unseen words degrade
gracefully instead of missing), and whole Latin/digit words. A query's kana that spell a
kanji word of the knowledge base's Japanese questions bring that word along (``query``'s
``spellings``: readings.Spellings).

jieba's dictionary (jieba-rs) takes ~0.3 s and ~33 MB to load, so one Analyzer is shared per
process (``get_analyzer``) and loaded at start-up, never per request.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from wxbot.qa.synonyms import Synonyms

MAX_KEY_CHARS = 500

# Runs of one kind of writing (after NFKC and lower-casing): CJK ideographs (segmented by
# jieba); kana and Thai, written without spaces and not segmented here (indexed as character
# n-grams); words of Latin letters (accented ones too: Tagalog's ñ) and digits; words of any
# other script (Cyrillic, Hangul...), whole. Before kana and Thai had runs, a question in
# hiragana or Thai had no index term at all, so it could never be found by words.
_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_THAI = "\u0e00-\u0e7f"
_LATIN = "a-z0-9\u00df-\u00f6\u00f8-\u024f"
_RUN_RE = re.compile(
    rf"[{_IDEOGRAPHS}]+|[{_KANA}]+|[{_THAI}]+|[{_LATIN}]+(?:[._+#-][{_LATIN}]+)*"
    rf"|[^\s{_IDEOGRAPHS}{_KANA}{_THAI}{_LATIN}]+"
)
_IDEOGRAPH_RE = re.compile(rf"[{_IDEOGRAPHS}]")
_KANA_RE = re.compile(rf"[{_KANA}]")
_THAI_RE = re.compile(rf"[{_THAI}]")
# A kana run in katakana pieces (loanwords: ログイン, クーポン) and hiragana pieces (mostly
# particles, endings and auxiliaries: は, ですか, ください); ー goes with either.
_KANA_PIECE_RE = re.compile("[\u30a1-\u30ff\u31f0-\u31ff]+|[\u3040-\u309f\u30fc]+")
_KATAKANA_RE = re.compile("[\u30a1-\u30fa\u31f0-\u31ff]")
_TO_HIRAGANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}  # ァ..ヶ -> ぁ..ゖ
_SPACE_RE = re.compile(r"\s+")

# Words that carry the form of a question, not its topic (question words, pronouns,
# particles, modal verbs). In a small knowledge base their idf is high simply because few
# questions happen to use them, so the index weighs them down (STOPWORD_WEIGHT) rather than
# trusting idf; they are kept, not dropped, so 「你是谁」 still has something to match.
_STOPWORDS_TEXT = """
    的 了 吗 呢 吧 啊 呀 哦 嘛 么 啦 嗯 哈 是 有 在 和 与 及 或 就 也 还 都 又 很 太 再
    我 你 您 他 她 它 我们 你们 他们 咱们 自己 这 那 这个 那个 这些 那些 这里 那里 这样 那样
    哪 哪个 哪些 哪里 哪儿 什么 怎么 怎样 怎么样 怎么办 如何 为什么 为何 咋 啥 多少 几
    能 能不能 可以 可不可以 会 会不会 要 想 请 请问 一下 一个 给 把 被 让 对 得 地 着 过
    该 应该 需要 是否 是不是 有没有 能否 到底 帮 帮我 麻烦 告诉 知道 吗 呢 么 不 没 没有
    怎么弄 怎么搞 怎么整 咋弄 咋整 咋搞 咋办 怎么回事 弄 搞 我想 我要 想要 一张 一份 一些 一点
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
STOPWORD_WEIGHT = 0.2
# The prefix of a *weak* term: the words and characters of a synonym-group word, kept beside
# its group (weighed like a function word) so that 「营业」 still finds 「营业时间」 and
# 「营业执照」 though each is a group of its own.
WEAK = "\x02"


class Query(NamedTuple):
    terms: list[str]  # index terms (with repetitions)
    soft: tuple[str, ...]  # cross-word bigrams: count only where a question has them
    words: list[str]  # word-level terms and synonym groups, compared with answers


def _is_kept(ch: str) -> bool:
    # Letters and numbers of any script survive; punctuation, symbols (emoji) and marks go.
    return unicodedata.category(ch)[0] in "LN"


def _is_mark(ch: str) -> bool:
    """A combining mark that is part of a word: Thai vowels and tone marks (「สวัสดี」 is
    six characters, two of them marks), not a variation selector (emoji)."""
    return unicodedata.category(ch) in ("Mn", "Mc") and not (
        "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"
    )


class _T2S:
    """Traditional → simplified with opencc, skipped when no character could change.

    opencc-python-reimplemented costs ~45 µs per short string; most messages are already
    simplified, so a set lookup first keeps the common case at a few microseconds.
    """

    def __init__(self) -> None:
        from opencc import OpenCC

        self._cc = OpenCC("t2s")
        self._chars = self._traditional_chars()

    @staticmethod
    def _traditional_chars() -> frozenset[str]:
        import opencc

        folder = Path(opencc.__file__).with_name("dictionary")
        chars: set[str] = set()
        for name in ("TSCharacters.txt", "TSPhrases.txt"):
            for line in (folder / name).read_text(encoding="utf-8").splitlines():
                if "\t" not in line:
                    continue
                source, targets = line.split("\t", 1)
                target = targets.split(" ")[0]
                if len(source) == len(target):
                    chars.update(s for s, t in zip(source, target, strict=True) if s != t)
                else:
                    chars.update(source)
        return frozenset(chars)

    def __call__(self, text: str) -> str:
        if self._chars.isdisjoint(text):
            return text
        return self._cc.convert(text)


_t2s: _T2S | None = None
_t2s_lock = threading.Lock()


def to_simplified(text: str) -> str:
    global _t2s
    if _t2s is None:
        with _t2s_lock:
            if _t2s is None:
                _t2s = _T2S()
    return _t2s(text)


def normalize(text: str, marks: bool = True) -> str:
    """Canonical form for matching: NFKC, lower case, simplified, punctuation → single spaces.
    Combining marks stay within a word (``marks``; question_key leaves them out)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = to_simplified(text)
    kept: list[str] = []
    word = False  # the last character kept is a letter, a number or a mark after one
    for ch in text:
        word = _is_kept(ch) or (marks and word and _is_mark(ch))
        kept.append(ch if word else " ")
    return _SPACE_RE.sub(" ", "".join(kept)).strip()


def question_key(text: str) -> str:
    """The identity of a question: its normalised form without spaces, hashed to a fixed width.

    A hash (sha1, 40 hex chars) keeps the unique index short on MySQL whatever the length.
    Empty normalised text has no key (the caller must reject it). Combining marks are left
    out, as they always were: the keys stored by earlier releases stay the same.
    """
    compact = normalize(text, marks=False).replace(" ", "")
    return hashlib.sha1(compact.encode("utf-8")).hexdigest() if compact else ""


class Analyzer:
    """Turns normalised text into index terms. One per process: holds jieba's dictionary."""

    def __init__(self) -> None:
        import rjieba

        # jieba-rs (rjieba): jieba's algorithm and dictionary in Rust. It cuts every text
        # of the shipped knowledge and accuracy sets as jieba 0.42 does (a test compares
        # them), about 5x faster, with a smaller dictionary in memory (README, "How
        # matching works"). Its default instance, which importing it loads: another Jieba()
        # would hold a second copy of the dictionary (24 MB).
        self._cut = rjieba.cut

    def terms(self, normalized: str, synonyms: Synonyms | None = None) -> list[str]:
        """Index terms of already-normalised text, with repetitions; plus the synonym groups
        it mentions (``~id`` tokens) when ``synonyms`` is given."""
        return self._analyze(normalized, synonyms)[0]

    def query(
        self,
        normalized: str,
        synonyms: Synonyms | None = None,
        spelled: Sequence[str] = (),
    ) -> Query:
        """The terms of a question being asked: the index terms, plus every character bigram
        of each CJK run as *soft* terms (they count only where a stored question has them, so
        segmentation differences cost nothing: 「挂失我的」 still meets 「挂失」), plus the
        word-level terms compared with answers. ``spelled``: the base's Japanese kanji words
        that the query's kana spell (readings.Spellings.spell: 「へんぴん」 → 返品) come along."""
        own: list[str] = []  # the words and characters of the query's group words
        terms, words, runs = self._analyze(normalized, synonyms, own)
        if spelled:  # their terms soft (a homophone the base lacks costs nothing)
            spelled_terms, spelled_words, _ = self._analyze(" ".join(spelled), synonyms)
            own.extend(spelled_terms)
            words.extend(spelled_words)
        # Dicts, not sets: ordered by first occurrence. A set of strings iterates in an order
        # that depends on the process's hash seed, and the order of the terms decides the
        # order in which the index adds up scores (floating point: near-ties could flip).
        have = dict.fromkeys(terms)
        soft = dict.fromkeys(
            run[i : i + 2]
            for run in runs
            for i in range(len(run) - 1)
            if run[i : i + 2] not in have and run[i : i + 2] not in STOPWORDS
        )
        # A group word's own terms meet the same words elsewhere; every plain term meets the
        # weak terms stored questions keep for their group words. Soft: no cost if absent.
        soft.update(dict.fromkeys(own))
        soft.update(dict.fromkeys(WEAK + t for t in (*have, *own) if t[0] != "~"))
        # A weak term (hiragana) also meets the same grams stored at full weight (a loanword
        # in katakana, folded): 「ろぐいん」 finds ログイン.
        soft.update(dict.fromkeys(t[1:] for t in have if t[0] == WEAK))
        return Query(terms, tuple(t for t in soft if t not in have), words)

    def function_grams(self, normalized: str) -> frozenset[str]:
        """Characters and bigrams of a question that only ever stand in its function words
        (「怎么办」 → 怎, 么, 办, 怎么, 么办 unless 办 also stands in a content word): the
        character ranker weighs them down as the word index does STOPWORDS."""
        function: set[str] = set()
        content: set[str] = set()
        for run in _RUN_RE.findall(normalized):
            if not _IDEOGRAPH_RE.match(run):
                continue
            marks: list[bool] = []
            for w in self._cut(run):
                marks.extend([w in STOPWORDS] * len(w))
            for i, ch in enumerate(run):
                (function if marks[i] else content).add(ch)
                if i + 1 < len(run):
                    both = marks[i] and marks[i + 1]
                    (function if both else content).add(run[i : i + 2])
        return frozenset(function - content)

    def _analyze(
        self, normalized: str, synonyms: Synonyms | None, own: list[str] | None = None
    ) -> tuple[list[str], list[str], list[str]]:
        """(index terms, word-level terms, CJK runs). The words and characters of group words
        go to ``own`` when given (a query), else into the terms as weak terms (a question)."""
        out: list[str] = []
        words: list[str] = []
        runs: list[str] = []
        pieces = synonyms.split(normalized) if synonyms else [(normalized, ())]
        for piece, groups in pieces:
            if groups:  # a synonym-group word: its group stands for it
                out.extend(groups)
                words.extend(groups)
                mine: list[str] = []
                for run in _RUN_RE.findall(piece):
                    if _IDEOGRAPH_RE.match(run):
                        self._cjk_terms(run, None, mine, [])
                if own is not None:
                    own.extend(mine)
                else:
                    out.extend(dict.fromkeys(WEAK + t for t in mine))
                continue
            for match in _RUN_RE.finditer(piece):
                run = match.group()
                if _KANA_RE.match(run):
                    _kana_terms(run, out, words)
                    continue
                if _THAI_RE.match(run):
                    _gram_terms(run, 3, out, words)
                    continue
                if not _IDEOGRAPH_RE.match(run):  # a word of letters / digits: one term
                    out.append(run)
                    words.append(run)
                    continue
                runs.append(run)
                self._cjk_terms(run, synonyms, out, words)
        return out, words, runs

    def _cjk_terms(
        self, run: str, synonyms: Synonyms | None, out: list[str], words: list[str]
    ) -> None:
        # Per jieba word: the word, the bigrams inside words of 3+ characters (so 营业时间
        # also matches 营业 and 时间 when the other side is segmented differently) and its
        # characters (typos and unknown words then lose a term or two, not the match).
        # Bigrams across word boundaries are left out of the index: mostly noise, and they
        # would multiply the vocabulary (memory); queries try them as soft terms instead.
        # Function words (STOPWORDS) stay whole: the index weighs them down.
        for w in self._cut(run):
            groups = synonyms.single(w) if synonyms and len(w) == 1 else ()
            if groups:
                out.extend(groups)
                words.extend(groups)
            elif w in STOPWORDS or len(w) == 1:
                out.append(w)
            else:
                out.append(w)
                words.append(w)
                if len(w) > 2:
                    out.extend(w[i : i + 2] for i in range(len(w) - 1))
                out.extend(w)

    def analyze(self, text: str) -> list[str]:
        return self.terms(normalize(text))


def _gram_terms(run: str, n: int, out: list[str], words: list[str]) -> None:
    """Terms of a run written without spaces that jieba does not segment (kana, Thai): its
    character bigrams and, up to ``n``, longer grams (the word-level terms), or the run
    itself when shorter. A kana is a syllable (its characters are terms too, as hanzi are);
    a Thai letter is a sound or a mark, too common to be a term alone."""
    if len(run) <= 2:
        out.append(run)
        words.append(run)
        if n == 2 and len(run) == 2:
            out.extend(run)
        return
    if n == 2:
        out.extend(run)
    for size in range(2, n + 1):
        grams = [run[i : i + size] for i in range(len(run) - size + 1)]
        out.extend(grams)
        if size == n:
            words.extend(grams)


def _kana_terms(run: str, out: list[str], words: list[str]) -> None:
    """Katakana pieces are content (loanwords), folded to hiragana so that 「ろぐいん」 and
    ログイン are one word. Hiragana pieces are mostly grammar (は, ですか, ください; rare in a
    small base, so their idf alone would make them weigh like content): weak terms, weighed
    like function words, as the word index does for Chinese STOPWORDS."""
    for piece in _KANA_PIECE_RE.findall(run):
        if _KATAKANA_RE.match(piece):
            _gram_terms(piece.translate(_TO_HIRAGANA), 2, out, words)
        else:
            grammar: list[str] = []
            _gram_terms(piece, 2, grammar, [])
            out.extend(WEAK + t for t in grammar)


@lru_cache(maxsize=1)
def get_analyzer() -> Analyzer:
    """The process-wide analyzer (jieba loads once, on first use or at start-up)."""
    return Analyzer()
