"""WAIT_QUERY: answer from the knowledge base once no functional router claimed the message."""

from __future__ import annotations

from wxbot.dialog.flow import WAIT_QUERY, Outcome, Turn
from wxbot.dialog.replies import Text

DONT_KNOW = "这个问题我还不会回答。"


def answer(turn: Turn) -> Outcome:
    kb = turn.deps.kb
    if kb is not None and turn.text:
        found = kb.answer(turn.db, turn.text)
        if found is not None:
            return Outcome(Text(found), WAIT_QUERY)
    return Outcome(Text(DONT_KNOW), WAIT_QUERY)
