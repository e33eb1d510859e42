"""Words users type that the engine itself understands, and the engine's canned replies
(Chinese source texts marked for the catalogues: send them through ``turn.t`` / ``translate``)."""

from __future__ import annotations

import unicodedata

from wxbot.dialog import kinds
from wxbot.i18n import N_

CANCEL_WORDS = frozenset(
    {"取消", "cancel", "退出", "quit", "ยกเลิก", "kanselahin", "ikansela", "キャンセル", "やめる"}
)
HUMAN_WORDS = frozenset(
    {"人工", "human", "转人工", "人工客服", "agent", "เจ้าหน้าที่", "ahente", "オペレーター", "担当者"}
)
# Asking what the bot can do, or what the step waiting wants: the whole message, in every
# reply language. Mid-step it is never the step's answer (it would count as a failed one).
HELP_WORDS = frozenset(
    {"帮助", "菜单", "使用帮助", "怎么用", "help", "menu", "ช่วยเหลือ", "เมนู", "tulong", "ヘルプ"}
    | {"メニュー", "使い方"}
)
# What the bot remembers of the conversation (the history window the LLM sees), by chat:
# the whole message, in every reply language and any state (wxbot/dialog/forgetting.py).
# Clearing it is asked to be confirmed with a YES_WORD first.
FORGET_WORDS = frozenset(
    {"清除记忆", "清空记忆", "删除记忆", "忘记我们的对话", "忘掉我们的对话", "删除对话记录"}
    | {"clear memory", "clear my memory", "forget our conversation", "delete my history"}
    | {"ล้างความจำ", "ลืมบทสนทนาของเรา", "ลบประวัติการสนทนา"}
    | {"burahin ang alaala", "kalimutan ang usapan natin", "burahin ang usapan"}
    | {"記憶を消去", "記憶を消して", "会話を忘れて", "履歴を削除"}
)
MEMORY_WORDS = frozenset(
    {"我的记忆", "查看记忆", "你记得什么", "my memory", "what do you remember"}
    | {"ความจำของฉัน", "ดูความจำ", "alaala ko", "ano ang naaalala mo"}
    | {"記憶を確認", "覚えていること"}
)
# 是 / 否 in every reply language (confirmations in flows and teaching)
YES_WORDS = frozenset(
    {"是", "是的", "对", "对的", "好", "好的", "确认", "确定", "yes", "y", "ok", "okay", "correct"}
    | {"ใช่", "ถูกต้อง", "oo", "opo", "tama", "はい", "そうです"}
)
NO_WORDS = frozenset(
    {"否", "不", "不是", "不对", "错了", "no", "n", "wrong", "nope"}
    | {"ไม่", "ไม่ใช่", "hindi", "mali", "いいえ", "違います", "ちがう"}
)

CANCELLED = N_("已取消，有什么问题可以直接问我。")
NOTHING_TO_CANCEL = N_("当前没有进行中的操作，有什么问题可以直接问我。")
TIMED_OUT = N_("上一步等待太久，已自动取消。")
BUSY = N_("当前咨询的人太多，请过几分钟再试。")
APOLOGY = N_("抱歉，系统开小差了，请稍后再发一次。")
STILL_WORKING = N_("还在处理中，请稍后发送任意消息获取结果。")
LATE_RESULT = N_("【上次的结果】")
WORK_LOST = N_("抱歉，你上一个请求没能处理完，请再发一次。")
NON_TEXT = N_("我目前只能看懂文字消息，请用文字描述你的问题。")
# A voice message WeChat's speech recognition could not turn into words (or did not try)
VOICE_UNHEARD = N_("抱歉，这条语音我没听清，请用文字把问题发给我。")
STICKER = N_("收到你的表情啦！有什么问题可以直接用文字问我。")
# A text of blanks only (「 」, 「\t」): no picture nor sticker, just nothing written yet
BLANK = N_("请输入你想问的问题，我来帮你解答。")
# The same mid-step, followed by what the step still waits for (never a wrong answer)
NEEDS_TEXT = N_("这一步需要你用文字回复。")
VOICE_STEP = N_("抱歉，这条语音我没听清，请用文字回复。")
NO_MORE_PAGES = N_("没有更多内容了。")


def normalise_command(text: str) -> str:
    """Lower-case and strip surrounding blanks, punctuation, emoji and sticker codes so
    「取消。」, ' Cancel ', 「是的～」, 「好的👍」 and 「对[OK]」 match; full-width letters and
    digits count as their ASCII selves (「ＹＥＳ」, 「ｃａｎｃｅｌ」, typed with a Chinese IME). Not
    NFKC: it rewrites Thai 「ำ」 (ล้างความจำ) into two characters no word list holds."""
    if text.isalnum():  # the usual message: nothing around its words (called per message)
        return (text if max(text) < "\uff01" else text.translate(_FULL_WIDTH)).lower()
    text = kinds.without_stickers(text).translate(_FULL_WIDTH)
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return text[start:end].lower()


_FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


def _edge(ch: str) -> bool:
    """A character a command word may be wrapped in: a blank, a punctuation mark, a tilde
    (「好的～」), an emoji or what joins one."""
    category = unicodedata.category(ch)  # not any mark (Mn): Thai vowels and tones are marks
    return (
        ch.isspace() or ch == "~" or category[0] in "PZ" or category == "Cf" or kinds.is_emoji(ch)
    )
