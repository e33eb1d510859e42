"""What the bot remembers of a user's conversation, seen and cleared by the user by chat.

- 「我的记忆」 / ``my memory`` (words.MEMORY_WORDS): how many exchanges are kept, out of how
  many at most, and for how long (WXBOT_MEMORY_DAYS).
- 「清除记忆」 / ``clear memory`` (words.FORGET_WORDS) asks first. 「是」 (any YES_WORDS) as the
  very next message clears both copies of the history: the context row's live window (the
  engine saves the context with it emptied), the memories row's durable copy and the LLM
  answers kept with the user's questions, through ``Deps.memory.clear_history`` (what the
  admin API's ``DELETE …/history`` does), and the user's did-you-mean votes. The
  user's language, window setting and usage stay. 「否」 or 「取消」 says it was kept; any
  other message keeps it too and is answered as usual (the question lapses with it).

Both are whole messages, in every reply language and in any state: a step waiting (the
weather's city, a flow's order number) stays and is asked again after the answer. None of
these exchanges is itself remembered: they are about the memory, not part of the
conversation (and 「清除记忆」 must leave nothing behind). A retry of the same message
(WeChat's, same MsgId) gets the recorded reply from the engine and clears nothing again.
Users expect to delete their own conversation data (China's PIPL and similar laws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wxbot.dialog import words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.delivery import FORGET_ASKED
from wxbot.dialog.flow import Deps, Turn
from wxbot.i18n import N_, NP_
from wxbot.qa import learning

ASK = N_("确定要清除我记住的我们的对话吗？清除后无法恢复。回复「是」确认，回复其他内容则保留。")
FORGOTTEN = N_("已清除我记住的我们的对话。你的语言等设置保持不变。")
KEPT = N_("好的，没有清除，我记住的对话保留。")
REMEMBERS_NOTHING = N_("我现在没有记住我们的任何对话。")
REMEMBERS = NP_(
    "我记得我们最近的 {n} 轮对话（最多记 {window} 轮）。",
    "我记得我们最近的 {n} 轮对话（最多记 {window} 轮）。",
    "n",
)
KEPT_FOR_DAYS = NP_(
    "超过 {days} 天没有新的对话，记录会自动删除。",
    "超过 {days} 天没有新的对话，记录会自动删除。",
    "days",
)
KEPT_UNTIL_CLEARED = N_("记录会一直保留，直到你清除。")
HOW_TO_FORGET = N_("发「清除记忆」可以删除这些记录。")


@dataclass(frozen=True)
class Said:
    """The reply to a memory command; ``asks``: it asks to confirm (the next message may
    answer it)."""

    text: str
    asks: bool = False


def answer(turn: Turn, ctx: ContextRow, command: str, window: int, deps: Deps) -> Said | None:
    """The reply when ``command`` (the normalised message) is about the memory, or answers
    the confirmation the previous reply asked; None: not about the memory."""
    if command in words.FORGET_WORDS:
        return Said(turn.t(ASK), asks=True)
    if ctx.slots.get(FORGET_ASKED):
        if command in words.YES_WORDS:
            forget(turn, ctx, deps.memory)
            return Said(turn.t(FORGOTTEN))
        if command in words.NO_WORDS or command in words.CANCEL_WORDS:
            return Said(turn.t(KEPT))
    if command in words.MEMORY_WORDS:
        return Said(status(turn, ctx, window, deps.settings.memory_days))
    return None


def forget(turn: Turn, ctx: ContextRow, store: Any) -> None:
    """Empty the user's history: the live window here (saved by the engine with the
    context) and both stored copies (the store's statement, in this transaction); their
    did-you-mean votes go too (each keeps a wording of theirs with their OpenID; a wording
    already learned stays the account's)."""
    ctx.history = []
    learning.forget_user(turn.db, ctx.openid)
    if store is not None:
        store.clear_history(turn.db, ctx.openid, turn.now)


def status(turn: Turn, ctx: ContextRow, window: int, days: int) -> str:
    """How much is remembered (the live window: what the next LLM prompt would carry)."""
    exchanges = sum(1 for entry in ctx.history if entry and entry[0] == "user")
    if not exchanges:
        return turn.t(REMEMBERS_NOTHING)
    kept_for = turn.t(KEPT_FOR_DAYS, days=days) if days > 0 else turn.t(KEPT_UNTIL_CLEARED)
    return "\n".join(
        [turn.t(REMEMBERS, n=exchanges, window=window), kept_for, turn.t(HOW_TO_FORGET)]
    )
