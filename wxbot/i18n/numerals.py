"""Numbers as WeChat's speech recognition writes them: a voice message answering 「请输入手机号」
often arrives as 「一三八零零一三八零零零零。」 or 「幺三八，零零幺三，八零零零零」, a pick from a list
as 「第二个。」. Typed text is read the same way, so a voice answer works exactly like a typed one.
"""

from __future__ import annotations

import re

# Chinese digits as read out one by one (幺 is how 1 is said in phone numbers and codes)
_DIGITS = {
    "零": "0", "〇": "0", "○": "0", "一": "1", "幺": "1", "二": "2", "三": "3", "四": "4",
    "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}  # fmt: skip
DIGIT_WORDS = frozenset(_DIGITS)  # the characters read as digits
# A run of digits read one by one, Chinese or mixed with Arabic ones (「138零零138零零零零」),
# perhaps in groups (recognition puts commas between them), long enough to be a number
# rather than words (「一一」, 「三五成群」 stay as they are).
_DIGIT = "[0-9" + "".join(_DIGITS) + "]"
_RUN = re.compile(f"{_DIGIT}(?:[ ,，、-]*{_DIGIT}){{3,}}")
_SMALL = {ch: n for n, ch in enumerate("一二三四五六七八九十", 1)}
# A whole message that only picks a number: 「二」, 「第二个」, 「选三」, 「十号」
_PICK = re.compile(
    r"^(\W*(?:选择?)?\s*第?\s*)(十[一二三四五六七八九]?|[一二三四五六七八九])(\s*[个条项号]?\W*)$"
)


def spoken_digits(text: str) -> str:
    """``text`` with every run of four or more digits read out in Chinese written in Arabic
    digits: 「一三八零零一三八零零零零」 → 「13800138000」, 「验证码是幺二三四五六」 → 「验证码是123456」."""
    if not any(ch in _DIGITS for ch in text):
        return text
    return _RUN.sub(lambda m: "".join(_DIGITS.get(ch, ch) for ch in m.group(0)), text)


def spoken_pick(text: str) -> str:
    """A pick from a numbered list said in Chinese, with its number in Arabic digits:
    「二」 → 「2」, 「第三个。」 → 「第3个。」, 「十二」 → 「12」; any other text unchanged."""
    match = _PICK.match(text)
    if match is None:
        return text
    word = match.group(2)
    number = 10 + (_SMALL[word[1]] if len(word) > 1 else 0) if word[0] == "十" else _SMALL[word]
    return f"{match.group(1)}{number}{match.group(3)}"
