"""WAIT_QUERY: answer from the knowledge base once no functional router claimed the message.

Confident match → the answer. Near misses → up to three numbered "did you mean" questions
(the choice is kept in the slots; replying with its number shows that answer). Nothing → say
so, record the question as unanswered for admins, and tell users who may teach how to.
Database cost: the knowledge version read (refresh_if_stale), plus one upsert for an
unanswered question (and one read of the suggested questions' titles) and, now and then, one
batched hit-counter update.
"""

from __future__ import annotations

import unicodedata

from wxbot.dialog.flow import WAIT_QUERY, Outcome, Turn
from wxbot.i18n import N_
from wxbot.messages.replies import Text
from wxbot.qa import store

DONT_KNOW = N_("这个问题我还不会回答，已经记下来了，会尽快请同事补充。你也可以换个说法再问我。")
TEACH_HINT = N_("\n\n（你有教学权限：发送「学习」，先发问题、再发答案，就能教会我。）")
DID_YOU_MEAN = N_("我不太确定你想问的是哪一个：\n{choices}\n回复序号查看答案，或者换个说法再问。")
GONE = N_("这条答案刚刚被删除了，请换个说法再问一次。")
SUGGEST = "suggest"  # slot: entry ids offered as "did you mean" choices
# What each outcome counts as in the daily statistics (the console's dashboard shows the rates).
ANSWERED, SUGGESTED, UNKNOWN = "answered", "suggested", "unknown"


def _choice(text: str, count: int) -> int | None:
    """The number the user picked (「1」, 「１」, 「第2个」), or None."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())
    rest = text.strip().strip("第个条。.！!")
    if not digits or len(rest) > len(digits) + 2:
        return None
    n = int(digits)
    return n if 1 <= n <= count else None


def answer(turn: Turn) -> Outcome:
    kb = turn.deps.kb
    text = turn.text
    if kb is None or not text:
        return Outcome(Text(turn.t(DONT_KNOW)), WAIT_QUERY)
    kb.refresh_if_stale(turn.db)
    offered = turn.slots.get(SUGGEST) or []
    picked = _choice(text, len(offered)) if offered else None
    if picked is not None:
        match = kb.entry(int(offered[picked - 1]))
        if match is None:
            return Outcome(Text(turn.t(GONE)), WAIT_QUERY)
        kb.record_hit(match.entry_id)
        kb.maybe_flush_hits(turn.db)
        return Outcome(Text(match.answer), WAIT_QUERY, stat=ANSWERED)
    found = kb.lookup(text)
    if found.best is not None:
        kb.record_hit(found.best.entry_id)
        kb.maybe_flush_hits(turn.db)
        return Outcome(Text(found.best.answer), WAIT_QUERY, stat=ANSWERED)
    now = turn.now
    turn.after_commit.append(lambda conn: store.record_unanswered(conn, text, now))
    fallback = turn.deps.fallback  # the LLM, when configured (wxbot.llm)
    claimed = fallback(turn) if fallback is not None else None
    if claimed is not None:
        return claimed
    if found.suggestions:
        ids = [m.entry_id for m in found.suggestions]
        titles = store.main_questions(turn.db, ids)  # one query, only on this rarer path
        ids = [e for e in ids if e in titles]
        choices = "\n".join(f"{i}. {titles[e]}" for i, e in enumerate(ids, 1))
        slots = {SUGGEST: ids}
        reply = turn.t(DID_YOU_MEAN, choices=choices) + (
            turn.t(TEACH_HINT) if turn.can_teach else ""
        )
        return Outcome(Text(reply), WAIT_QUERY, slots=slots, stat=SUGGESTED)
    reply = turn.t(DONT_KNOW) + (turn.t(TEACH_HINT) if turn.can_teach else "")
    return Outcome(Text(reply), WAIT_QUERY, stat=UNKNOWN)
