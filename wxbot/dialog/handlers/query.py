"""WAIT_QUERY: answer from the knowledge base once no functional router claimed the message.

Confident match → the answer. Near misses → up to three numbered "did you mean" questions
(the choice and the user's wording are kept in the slots; replying with its number shows that
answer and counts as a vote to learn the wording: see qa/learning.py). Nothing → ``dont_know``
(the one place that handles "no confident answer"): say so, record the question as
unanswered for admins, and tell users who may teach how to.

Database cost of a plain question: nothing beyond the engine's statements (the knowledge
version rides along with its lock; answers and suggestion titles are in memory). Statistics
(unanswered questions, batched hit counts, did-you-mean votes) are written after the commit.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Outcome, Turn
from wxbot.i18n import N_, numerals
from wxbot.messages.replies import Text
from wxbot.qa import Lookup, learning, unanswered

DONT_KNOW = N_("这个问题我还不会回答，已经记下来了，会尽快请同事补充。你也可以换个说法再问我。")
TEACH_HINT = N_("\n\n（你有教学权限：发送「学习」，先发问题、再发答案，就能教会我。）")
DID_YOU_MEAN = N_("我不太确定你想问的是哪一个：\n{choices}\n回复序号查看答案，或者换个说法再问。")
GONE = N_("这条答案刚刚被删除了，请换个说法再问一次。")
BAD_PICK = N_("请回复 1 到 {n} 之间的序号查看答案，或者换个说法再问。")
ONLY_PICK = N_("请回复 1 查看答案，或者换个说法再问。")
NO_LIST = N_("现在没有待选的问题列表了，请直接发送你想问的问题。")
SUGGEST = "suggest"  # slot: entry ids offered as "did you mean" choices
ASKED = "asked"  # slot: the wording that led to them (learned when users pick)
TITLES = "titles"  # slot: the questions shown for them, in the same order
# What each outcome counts as in the daily statistics (the console's dashboard shows the rates).
ANSWERED, SUGGESTED, UNKNOWN = "answered", "suggested", "unknown"


# A reply that is only a number: 「1」, 「１」, 「(2)」, 「第2个」, 「选2」, 「3号」, and as voice
# recognition writes them: 「二。」, 「第二个」. 「3点」, 「2楼」,
# 「1个」 or 「3点开门吗」 are new questions, not picks.
_PICK = re.compile(r"[\W_]*(?:选择?\s*)?(?:第\s*(\d{1,4})\s*[个条项]?|(\d{1,4})\s*号?)[\W_]*")


def _number(text: str) -> int | None:
    """The number of a reply that is only a pick (「2」, 「第二个」), whatever its range, or None."""
    match = _PICK.fullmatch(numerals.spoken_pick(unicodedata.normalize("NFKC", text)))
    return int(match.group(1) or match.group(2)) if match is not None else None


def _choice(text: str, count: int) -> int | None:
    """The number the user picked, or None."""
    n = _number(text)
    return n if n is not None and 1 <= n <= count else None


def _stray_pick(turn: Turn, offered: list) -> Outcome | None:  # type: ignore[type-arg]
    """A reply that is only a number the knowledge base does not answer: a pick outside the
    list shown (「3」 to two choices), or a pick where no list is waiting (it expired with the
    context, or an answer came since). Said so, with the list kept, rather than 「这个问题我还
    不会回答」 and 「3」 logged as an unanswered question. Small numbers only without a list:
    「110」 or 「2024」 are not picks."""
    n = _number(turn.text)
    if n is None:
        return None
    if offered:
        reply = turn.t(BAD_PICK, n=len(offered)) if len(offered) > 1 else turn.t(ONLY_PICK)
        return Outcome(Text(reply), WAIT_QUERY, slots=turn.slots, counts=False)
    if n > 9:
        return None
    return Outcome(Text(turn.t(NO_LIST)), WAIT_QUERY)


def _count_hit(turn: Turn, entry_id: int) -> None:
    kb = turn.deps.kb
    kb.record_hit(entry_id)
    if kb.flush_due():  # only then: an empty after-commit transaction still costs round trips
        turn.after_commit.append(kb.maybe_flush_hits)


def answer(turn: Turn) -> Outcome:
    kb = turn.deps.kb
    text = turn.text
    if kb is None or not text:
        return Outcome(Text(turn.t(DONT_KNOW)), WAIT_QUERY)
    kb.refresh_if_stale(turn.db)  # no query: the engine read the version with its lock
    offered = turn.slots.get(SUGGEST) or []
    picked = _choice(text, len(offered)) if offered else None
    if picked is not None:
        titles = turn.slots.get(TITLES)
        shown = (
            titles[picked - 1] if isinstance(titles, list) and len(titles) == len(offered) else None
        )
        return _picked(turn, int(offered[picked - 1]), shown)
    found = kb.lookup(text, language=turn.language)
    if found.best is not None:
        _count_hit(turn, found.best.entry_id)
        return Outcome(Text(found.best.answer), WAIT_QUERY, stat=ANSWERED)
    return _stray_pick(turn, offered) or dont_know(turn, found)


def _picked(turn: Turn, entry_id: int, shown: object = None) -> Outcome:
    kb = turn.deps.kb
    match = kb.entry(entry_id)
    # An entry id names another entry once the one offered was deleted and a new one took
    # its id (SQLite reuses the highest id; imports number entries from MAX(id) + 1): the
    # choice is what was shown, so an entry that no longer has that question is gone too,
    # rather than answering (and learning the wording for) an unrelated entry.
    if match is None or (isinstance(shown, str) and not kb.has_question(entry_id, shown)):
        return Outcome(Text(turn.t(GONE)), WAIT_QUERY)
    _count_hit(turn, entry_id)
    asked = turn.slots.get(ASKED)
    if isinstance(asked, str) and asked:
        openid, now = turn.msg.openid, turn.now
        min_users = turn.deps.settings.alias_min_users
        turn.after_commit.append(
            lambda conn: learning.record_pick(
                conn, openid, asked, entry_id, now=now, min_users=min_users
            )
        )
    return Outcome(Text(match.answer), WAIT_QUERY, stat=ANSWERED)


def may_be_question(text: str) -> bool:
    """Whether ``text`` has a letter: bare numbers and codes (「13800138000」, 「42」) are
    never looked up as questions beside a step or as a QR code's scene."""
    return any(ch.isalpha() for ch in text)


def knowledge_answer(turn: Turn) -> str | None:
    """A confident knowledge-base answer to a question asked while a step waits (a flow's
    step, a menu click mid-step), or None. Not for bare numbers and codes: they are answers
    to the step, however wrong. Neither logged as unanswered nor offered as did-you-mean."""
    kb = turn.deps.kb
    text = turn.text
    if kb is None or not may_be_question(text):
        return None
    kb.refresh_if_stale(turn.db)
    found = kb.lookup(text, language=turn.language).best
    if found is None:
        return None
    _count_hit(turn, found.entry_id)
    return found.answer


def answers_confidently(kb: Any, text: str, language: str | None = None) -> bool:
    """Whether the knowledge base, as last refreshed, answers ``text`` confidently (in
    ``language``; None: entries of every language alike). In memory, no database, nothing
    counted: asking whether something is a question at all (a QR code's scene) is not asking
    it."""
    if kb is None or not may_be_question(text):
        return False
    lookup = getattr(kb, "lookup_uncounted", None) or kb.lookup
    return lookup(text, language=language).best is not None


def dont_know(turn: Turn, found: Lookup) -> Outcome:
    """No confident answer: offer the near misses, or say so. Either way the question is
    counted as unanswered (after the commit: a statistics row many users share)."""
    text, now = turn.text, turn.now
    turn.after_commit.append(lambda conn: unanswered.record_unanswered(conn, text, now))
    fallback = turn.deps.fallback  # the LLM, when configured (wxbot.llm)
    claimed = fallback(turn) if fallback is not None else None
    if claimed is not None:
        return claimed
    hint = turn.t(TEACH_HINT) if turn.can_teach else ""
    if found.suggestions:
        choices = "\n".join(f"{i}. {m.question}" for i, m in enumerate(found.suggestions, 1))
        slots = {
            SUGGEST: [m.entry_id for m in found.suggestions],
            ASKED: text,
            TITLES: [m.question for m in found.suggestions],
        }
        reply = turn.t(DID_YOU_MEAN, choices=choices) + hint
        return Outcome(Text(reply), WAIT_QUERY, slots=slots, stat=SUGGESTED)
    return Outcome(Text(turn.t(DONT_KNOW) + hint), WAIT_QUERY, stat=UNKNOWN)


def forget_user(conn, openid: str) -> None:  # type: ignore[no-untyped-def]
    """Unsubscribe: the user's did-you-mean votes go too."""
    learning.forget_user(conn, openid)
