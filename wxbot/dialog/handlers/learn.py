"""Teaching by chat: 「学习」 → WAIT_LEARN (question, then answer) → stored, or WAIT_CONFIRM
when the question already has a different answer (「是」 overwrites, 「否」 keeps it).

Who may teach: ``WXBOT_TEACH_POLICY`` = ``everyone``, or ``admins`` = the OpenIDs in
``WXBOT_ADMIN_OPENIDS`` (checked at every step, in case the policy changed meanwhile).
「取消」 (an engine-wide interrupt) leaves at any step; nothing is stored before the last one.
"""

from __future__ import annotations

from sqlalchemy import Connection, update

from wxbot.dialog.flow import WAIT_QUERY, Handler, Outcome, Router, Turn
from wxbot.dialog.words import normalise_command
from wxbot.messages.replies import Text
from wxbot.qa import store, writer
from wxbot.qa.models import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from wxbot.qa.text import question_key

WAIT_LEARN = "WAIT_LEARN"
WAIT_CONFIRM = "WAIT_CONFIRM"

TEACH_WORDS = frozenset({"学习", "teach", "调教", "教你"})
YES_WORDS = frozenset({"是", "是的", "对", "好", "好的", "确定", "覆盖", "yes", "y", "ok"})
NO_WORDS = frozenset({"否", "不", "不是", "不要", "不用", "算了", "保留", "no", "n"})

REFUSED = "抱歉，只有管理员可以教我新知识。遇到我答不上的问题，客服同事会及时补充。"
ASK_QUESTION = "好的，开始学习。请发送要教我的问题（随时发送「取消」退出）："
ASK_ANSWER = "问题是「{question}」。现在请发送它的答案："
HAS_ANSWER = "\n（这个问题已经有答案了，发送新答案后我会问你是否覆盖。）"
CONFIRM = (
    "「{question}」已经有答案：\n{old}\n\n要用新答案覆盖吗？回复「是」覆盖，回复「否」保留原答案。"
)
ASK_YES_NO = "请回复「是」覆盖原答案，或回复「否」保留原答案（发送「取消」放弃）。"
LEARNT = "学会了！以后有人问「{question}」，我会回答：\n{answer}"
UPDATED = "已更新！以后有人问「{question}」，我会回答：\n{answer}"
KEPT = "好的，保留原来的答案，没有改动。"
SAME = "「{question}」的答案本来就是这个，不用再学啦。"
NOT_TEXT = "请用文字发送{what}（发送「取消」退出）。"
TOO_LONG = "{what}太长了（最多 {limit} 字），请精简后重新发送："
NO_WORDS_IN = "{what}里没有文字，请重新发送："


def _allowed(turn: Turn) -> bool:
    """The engine decides from WXBOT_TEACH_POLICY / WXBOT_ADMIN_OPENIDS on every message, so
    asking at each step also catches a policy changed in the middle of a flow."""
    return turn.can_teach


def route(turn: Turn) -> Outcome | None:
    if normalise_command(turn.text) not in TEACH_WORDS:
        return None
    if not _allowed(turn):
        return Outcome(Text(REFUSED), WAIT_QUERY)
    return Outcome(Text(ASK_QUESTION), WAIT_LEARN, slots={"step": "question"})


def _check(text: str, what: str, limit: int, key_needed: bool) -> str | None:
    """A reason to ask again, or None when the text is acceptable."""
    if not text:
        return NOT_TEXT.format(what=what)
    if len(text) > limit:
        return TOO_LONG.format(what=what, limit=limit)
    if key_needed and not question_key(text):
        return NO_WORDS_IN.format(what=what)
    return None


def learn(turn: Turn) -> Outcome:
    if not _allowed(turn):
        return Outcome(Text(REFUSED), WAIT_QUERY)
    text = turn.text
    if turn.slots.get("step") != "answer":
        problem = _check(text, "问题", MAX_QUESTION_CHARS, key_needed=True)
        if problem:
            return Outcome(Text(problem), WAIT_LEARN, slots=turn.slots, failed=True)
        reply = ASK_ANSWER.format(question=text)
        if store.find_entry(turn.db, text) is not None:
            reply += HAS_ANSWER
        return Outcome(Text(reply), WAIT_LEARN, slots={"step": "answer", "question": text})
    question = str(turn.slots.get("question", ""))
    problem = _check(text, "答案", MAX_ANSWER_CHARS, key_needed=False)
    if problem:
        return Outcome(Text(problem), WAIT_LEARN, slots=turn.slots, failed=True)
    existing = store.find_entry(turn.db, question)
    if existing is not None:
        if existing.answer == text:
            return Outcome(Text(SAME.format(question=question)), WAIT_QUERY)
        slots = {"question": question, "answer": text}
        reply = CONFIRM.format(question=question, old=existing.answer)
        return Outcome(Text(reply), WAIT_CONFIRM, slots=slots)
    writer.teach(turn.db, question, text, now=turn.now, taught_by=turn.msg.openid)
    return Outcome(Text(LEARNT.format(question=question, answer=text)), WAIT_QUERY)


def confirm(turn: Turn) -> Outcome:
    if not _allowed(turn):
        return Outcome(Text(REFUSED), WAIT_QUERY)
    word = normalise_command(turn.text)
    if word in NO_WORDS:
        return Outcome(Text(KEPT), WAIT_QUERY)
    if word not in YES_WORDS:
        return Outcome(Text(ASK_YES_NO), WAIT_CONFIRM, slots=turn.slots, failed=True)
    question = str(turn.slots.get("question", ""))
    answer = str(turn.slots.get("answer", ""))
    _, created = writer.teach(turn.db, question, answer, now=turn.now, taught_by=turn.msg.openid)
    template = LEARNT if created else UPDATED  # (created: deleted by an admin meanwhile)
    return Outcome(Text(template.format(question=question, answer=answer)), WAIT_QUERY)


def forget_user(conn: Connection, openid: str) -> None:
    """On unsubscribe: what they taught stays (it is the account's), their OpenID does not."""
    entries = store.entries
    conn.execute(update(entries).where(entries.c.taught_by == openid).values(taught_by=None))


STATES: dict[str, Handler] = {WAIT_LEARN: learn, WAIT_CONFIRM: confirm}
ROUTERS: list[Router] = [route]
