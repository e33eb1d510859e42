"""Which flow a message in WAIT_QUERY starts, if any.

In order: a keyword the message starts with (「绑定手机 13800138000」); a trigger phrase the
message contains (「我要查充值，订单号 …」), or all of whose words it contains in any order
(「my recharge was not received」 for 「recharge not received」); then a fuzzy match against
the trigger phrases, scored like knowledge questions (the knowledge base's analyzer and BM25
index, overlap as the confidence). A fuzzy match must be confident *and* at least as good as
the best knowledge-base question, so a question the knowledge base answers well is not stolen
by a similar-looking trigger; a keyword or phrase match gives way only when the message is
word for word a stored question (「绑定手机有什么用」). Longest phrases win ties (「充值没到账」
before 「充值」). A phrase that begins or ends with a digit is never cut out of a longer run of
digits: the trigger 「12」 is not in 「2012」, the keyword 「12」 does not start 「123」.
"""

from __future__ import annotations

import re
from typing import Any

from wxbot.flows.spec import Flow
from wxbot.memo import MISSING, Memo
from wxbot.qa.index import Bm25Index
from wxbot.qa.text import STOPWORD_WEIGHT, STOPWORDS, get_analyzer, normalize

FUZZY_CONFIDENT = 0.5
MEMO_ENTRIES = 4096  # decisions remembered per process (most messages are a few questions)
MEMO_MAX_TEXT = 200  # characters; longer texts are rarely sent twice
# values such as order numbers dilute the overlap of the words around them
_CJK_SPACE = re.compile(r"(?<![a-z0-9]) | (?![a-z0-9])")
_VALUES = re.compile(r"[+\d][\d\s\-]{3,}\d|[a-z]*\d[a-z\d]{3,}")


def phrase_key(text: str) -> str:
    """Normalised like knowledge questions; a space only counts between Latin words
    (「查 订单」 is 「查订单」, 「bind phone」 stays two words)."""
    return _CJK_SPACE.sub("", normalize(text))


def _starts(text: str, phrase: str) -> bool:
    if not text.startswith(phrase):
        return False
    rest = text[len(phrase) : len(phrase) + 1]
    if _digit(phrase[-1:]) and _digit(rest):  # 「12」 does not start 「123」
        return False
    return not (phrase[-1:].isascii() and rest.isascii() and rest.isalpha())


def _contains(text: str, phrase: str) -> bool:
    # a number is matched whole: 「12」 (or 「查12」) is not found in 「2012」 (「查123」)
    before = "(?<![0-9])" if _digit(phrase[:1]) else ""
    after = "(?![0-9])" if _digit(phrase[-1:]) else ""
    if phrase.isascii():  # Latin phrases match whole words only: 「bind phone」, not 「rebind」
        before, after = f"(?<![a-z]){before}", f"(?![a-z]){after}"
    if not before and not after:
        return phrase in text
    return re.search(f"{before}{re.escape(phrase)}{after}", text) is not None


def _digit(ch: str) -> bool:
    return ch.isascii() and ch.isdigit()


class TriggerMatcher:
    def __init__(self, flows: list[Flow]) -> None:
        self.flows = flows
        self.keywords = sorted(
            ((phrase_key(k), f) for f in flows for k in f.keywords), key=lambda p: -len(p[0])
        )
        self.phrases = sorted(
            ((phrase_key(t), f) for f in flows for t in f.triggers), key=lambda p: -len(p[0])
        )
        self._index: Bm25Index | None = None
        self._terms: list[tuple[frozenset[str], Flow]] | None = None
        self._memo = Memo(MEMO_ENTRIES)

    def _term_sets(self) -> list[tuple[frozenset[str], Flow]]:
        if self._terms is None:
            analyzer = get_analyzer()
            sets = [(frozenset(analyzer.terms(p)), f) for p, f in self.phrases]
            self._terms = [(t, f) for t, f in sets if len(t) >= 2]
        return self._terms

    def _fuzzy_index(self) -> Bm25Index:
        if self._index is None:
            analyzer = get_analyzer()
            index = Bm25Index(STOPWORDS, STOPWORD_WEIGHT)
            for i, flow in enumerate(self.flows):
                if flow.triggers:
                    index.add_entry(i, [analyzer.terms(phrase_key(t)) for t in flow.triggers])
            self._index = index
        return self._index

    def match(self, text: str, kb: Any = None) -> Flow | None:
        """The flow ``text`` starts, if any. A decision depends on the text, the (fixed)
        flows and the knowledge base (its version and ranking weights): it is remembered
        under those, so the usual repeated question costs a dictionary lookup."""
        if len(text) > MEMO_MAX_TEXT:
            return self._match(text, kb)
        version = getattr(kb, "version", None)
        key = (text, version, getattr(kb, "weights", None))
        found = self._memo.get(key)
        if found is MISSING:
            found = self._match(text, kb)
            if getattr(kb, "version", None) == version:  # the index did not move meanwhile
                self._memo.put(key, found)
        return found  # type: ignore[no-any-return]

    def command_flow(self, text: str, kb: Any = None) -> Flow | None:
        """The flow ``text`` plainly asks for, if any: it starts with one of the flow's
        keywords or trigger phrases (「绑定手机 138…」, 「查充值」). Such a message also takes a
        user out of another task's waiting state."""
        key = phrase_key(text)
        for phrase, flow in (*self.keywords, *self.phrases):
            if _starts(key, phrase):
                return None if _asks_the_knowledge_base(kb, text, key, phrase) else flow
        return None

    def bare_phrase(self, text: str) -> Flow | None:
        """The flow one of whose keywords or trigger phrases ``text`` is, and nothing more
        (punctuation, case and spaces between Chinese words aside): 「改地址」, 「改地址！」."""
        key = phrase_key(text)
        return next(
            (flow for phrase, flow in (*self.keywords, *self.phrases) if phrase == key), None
        )

    def _match(self, text: str, kb: Any) -> Flow | None:
        key = phrase_key(text)
        if not key:
            return None
        for phrase, flow in self.keywords:
            if _starts(key, phrase):
                return None if _asks_the_knowledge_base(kb, text, key, phrase) else flow
        for phrase, flow in self.phrases:
            if _contains(key, phrase):
                return None if _asks_the_knowledge_base(kb, text, key, phrase) else flow
        if not self.phrases:
            return None
        terms = get_analyzer().terms(phrase_key(_VALUES.sub(" ", key)))
        present = set(terms)
        for phrase_terms, flow in self._term_sets():
            if phrase_terms <= present:  # every word of the phrase, in any order
                return flow
        hits = self._fuzzy_index().search(terms, limit=1)
        if not hits or hits[0].confidence < FUZZY_CONFIDENT:
            return None
        best_question = _best_knowledge_confidence(kb, text)
        if best_question > hits[0].confidence:
            return None
        return self.flows[hits[0].entry_id]


def _asks_the_knowledge_base(kb: Any, text: str, key: str, phrase: str) -> bool:
    """A message that holds a keyword or trigger but is, word for word, a question the
    knowledge base stores (「绑定手机有什么用」 beside the keyword 「绑定手机」) asks about the
    flow rather than starting it. The bare phrase always starts the flow."""
    if key == phrase:
        return False
    stored = getattr(kb, "is_stored_question", None)
    return stored is not None and stored(text)


def _best_knowledge_confidence(kb: Any, text: str) -> float:
    search = getattr(kb, "search", None)
    if search is None:
        return 0.0
    hits = search(text, limit=1)
    return hits[0].confidence if hits else 0.0
