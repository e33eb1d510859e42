"""Teaching by chat: 「学习」 → WAIT_LEARN (question, then answer) → stored, or WAIT_CONFIRM
when the question already has a different answer (「是」 overwrites, 「否」 keeps it).

Who may teach: ``WXBOT_TEACH_POLICY`` = ``everyone``, or ``admins`` = the OpenIDs in
``WXBOT_ADMIN_OPENIDS`` (checked at every step, in case the policy changed meanwhile).
「取消」 (an engine-wide interrupt) leaves at any step; nothing is stored before the last one.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from wxbot.dialog import words
from wxbot.dialog.flow import WAIT_QUERY, Handler, Outcome, Router, Turn
from wxbot.dialog.words import normalise_command
from wxbot.i18n import N_
from wxbot.messages.replies import Silent, Text
from wxbot.qa import store, writer
from wxbot.qa.models import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from wxbot.qa.text import question_key

WAIT_LEARN = "WAIT_LEARN"
WAIT_CONFIRM = "WAIT_CONFIRM"

TEACH_WORDS = frozenset({"学习", "teach", "learn", "调教", "教你"})
YES_WORDS = words.YES_WORDS | {"覆盖"}
NO_WORDS = words.NO_WORDS | {"不要", "不用", "算了", "保留"}

REFUSED = N_("抱歉，只有管理员可以教我新知识。遇到我答不上的问题，客服同事会及时补充。")
ASK_QUESTION = N_("好的，开始学习。请发送要教我的问题（随时发送「取消」退出）：")
ASK_ANSWER = N_("问题是「{question}」。现在请发送它的答案：")
ASK_QUESTION_AGAIN = N_("请发送要教我的问题（发送「取消」退出）：")
HAS_ANSWER = N_("\n（这个问题已经有答案了，发送新答案后我会问你是否覆盖。）")
CONFIRM = N_(
    "「{question}」已经有答案：\n{old}\n\n要用新答案覆盖吗？回复「是」覆盖，回复「否」保留原答案。"
)
ASK_YES_NO = N_("请回复「是」覆盖原答案，或回复「否」保留原答案（发送「取消」放弃）。")
LEARNT = N_("学会了！以后有人问「{question}」，我会回答：\n{answer}")
UPDATED = N_("已更新！以后有人问「{question}」，我会回答：\n{answer}")
KEPT = N_("好的，保留原来的答案，没有改动。")
SAME = N_("「{question}」的答案本来就是这个，不用再学啦。")
NOT_TEXT = N_("请用文字发送{what}（发送「取消」退出）。")
TOO_LONG = N_("{what}太长了（最多 {limit} 字），请精简后重新发送：")
QUESTION = N_("问题")
ANSWER = N_("答案")
NO_WORDS_IN = N_("{what}里没有文字，请重新发送：")


def _allowed(turn: Turn) -> bool:
    """The engine decides from WXBOT_TEACH_POLICY / WXBOT_ADMIN_OPENIDS on every message, so
    asking at each step also catches a policy changed in the middle of a flow."""
    return turn.can_teach


def route(turn: Turn) -> Outcome | None:
    if normalise_command(turn.text) not in TEACH_WORDS:
        return None
    if not _allowed(turn):
        return Outcome(Text(turn.t(REFUSED)), WAIT_QUERY)
    return Outcome(Text(turn.t(ASK_QUESTION)), WAIT_LEARN, slots={"step": "question"})


def _check(turn: Turn, text: str, what: str, limit: int, key_needed: bool) -> str | None:
    """A reason to ask again, or None when the text is acceptable."""
    if not text:
        return turn.t(NOT_TEXT, what=turn.t(what))
    if len(text) > limit:
        return turn.t(TOO_LONG, what=turn.t(what), limit=limit)
    if key_needed and not question_key(text):
        return turn.t(NO_WORDS_IN, what=turn.t(what))
    return None


def _ignored_event(turn: Turn) -> Outcome | None:
    """A LOCATION report (sent every few seconds by accounts that collect locations) is
    no answer to what we asked: stay silent and wait, without counting a failed attempt."""
    if turn.msg.is_event:
        return Outcome(Silent(), turn.state, slots=turn.slots, counts=False)
    return None


def learn(turn: Turn) -> Outcome:
    ignored = _ignored_event(turn)
    if ignored is not None:
        return ignored
    if not _allowed(turn):
        return Outcome(Text(turn.t(REFUSED)), WAIT_QUERY)
    text = turn.text
    if turn.slots.get("step") != "answer":
        problem = _check(turn, text, QUESTION, MAX_QUESTION_CHARS, key_needed=True)
        if problem:
            return Outcome(Text(problem), WAIT_LEARN, slots=turn.slots, failed=True)
        reply = turn.t(ASK_ANSWER, question=text)
        if store.find_entry(turn.db, text) is not None:
            reply += turn.t(HAS_ANSWER)
        return Outcome(Text(reply), WAIT_LEARN, slots={"step": "answer", "question": text})
    question = str(turn.slots.get("question", ""))
    problem = _check(turn, text, ANSWER, MAX_ANSWER_CHARS, key_needed=False)
    if problem:
        return Outcome(Text(problem), WAIT_LEARN, slots=turn.slots, failed=True)
    existing = store.find_entry(turn.db, question)
    if existing is not None:
        if existing.answer == text:
            return Outcome(Text(turn.t(SAME, question=question)), WAIT_QUERY)
        slots = {"question": question, "answer": text, "old": existing.answer}
        reply = turn.t(CONFIRM, question=question, old=existing.answer)
        return Outcome(Text(reply), WAIT_CONFIRM, slots=slots)
    writer.teach(turn.db, question, text, now=turn.now, taught_by=turn.msg.openid)
    return Outcome(Text(turn.t(LEARNT, question=question, answer=text)), WAIT_QUERY)


def confirm(turn: Turn) -> Outcome:
    ignored = _ignored_event(turn)
    if ignored is not None:
        return ignored
    if not _allowed(turn):
        return Outcome(Text(turn.t(REFUSED)), WAIT_QUERY)
    word = normalise_command(turn.text)
    if word in NO_WORDS:
        return Outcome(Text(turn.t(KEPT)), WAIT_QUERY)
    if word in TEACH_WORDS:  # 「学习」 again: the question again, not a wrong answer
        return Outcome(Text(turn.t(ASK_YES_NO)), WAIT_CONFIRM, slots=turn.slots, counts=False)
    if word not in YES_WORDS:
        return Outcome(Text(turn.t(ASK_YES_NO)), WAIT_CONFIRM, slots=turn.slots, failed=True)
    question = str(turn.slots.get("question", ""))
    answer = str(turn.slots.get("answer", ""))
    shown = turn.slots.get("old")
    existing = store.find_entry(turn.db, question) if isinstance(shown, str) else None
    if existing is not None and existing.answer != shown:
        # Someone changed that answer (the admin API, the console, another teacher) since we
        # showed it: 「是」 agreed to overwrite the answer shown, not one never seen. Show the
        # current one and ask again, so a fresh edit is not silently lost.
        if existing.answer == answer:
            return Outcome(Text(turn.t(SAME, question=question)), WAIT_QUERY)
        slots = {**turn.slots, "old": existing.answer}
        reply = turn.t(CONFIRM, question=question, old=existing.answer)
        return Outcome(Text(reply), WAIT_CONFIRM, slots=slots)
    _, created = writer.teach(turn.db, question, answer, now=turn.now, taught_by=turn.msg.openid)
    template = LEARNT if created else UPDATED  # (created: deleted by an admin meanwhile)
    return Outcome(Text(turn.t(template, question=question, answer=answer)), WAIT_QUERY)


def forget_user(conn: Connection, openid: str) -> None:
    """On unsubscribe: what they taught stays (it is the account's), their OpenID does not."""
    entries = store.entries
    conn.execute(update(entries).where(entries.c.taught_by == openid).values(taught_by=None))


def starts_teaching(turn: Turn) -> bool:
    """「学习」 from someone who may teach, in another task's waiting state."""
    return (
        turn.state not in STATES
        and not turn.msg.is_event
        and normalise_command(turn.text) in TEACH_WORDS
        and _allowed(turn)
    )


def _prompt(turn: Turn) -> str:
    """What the teaching step waits for, asked again after something else came in between."""
    if turn.state == WAIT_CONFIRM:
        return turn.t(ASK_YES_NO)
    if turn.slots.get("step") == "answer":
        return turn.t(ASK_ANSWER, question=str(turn.slots.get("question", "")))
    return turn.t(ASK_QUESTION_AGAIN)


def claims(text: str, _kb: object = None) -> bool:
    """Whether ``route`` takes ``text`` typed in WAIT_QUERY (see CLAIMS in states.py): it
    answers 「学习」 from anyone, if only to say who may teach."""
    return normalise_command(text) in TEACH_WORDS


STATES: dict[str, Handler] = {WAIT_LEARN: learn, WAIT_CONFIRM: confirm}
PROMPTS = {WAIT_LEARN: _prompt, WAIT_CONFIRM: _prompt}
COMMANDS = [starts_teaching]
CLAIMS = [claims]
TAKES_ANY_TEXT = {WAIT_LEARN}  # the question or answer being taught may start with any word
ROUTERS: list[Router] = [route]
