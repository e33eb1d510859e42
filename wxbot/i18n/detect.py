"""Which of zh, en, th, tl, ja a message is written in, from its script.

Thai letters → th; any kana → ja (Japanese mixes kanji with kana, Chinese never uses kana);
Han → zh; Latin → en, or tl when Tagalog function words outnumber English ones (Taglish
included). Scripts are weighed against each other so 「weather 北京」 is neither a firm English
nor a firm Chinese message: a detection is *strong* only when one script clearly dominates a
message of some length, and only strong detections may change a language already detected
(see wxbot.dialog.language). Digits, emoji, punctuation, links and email addresses say
nothing.

A script alone does not always say a language: names are written in it too. A Chinese user
typing 「New York City」 or the katakana 「アトランティス」, a Japanese user typing 「会員登録」
(kanji only) or 「天気 朝阳」 wrote a name, not a sentence in another language. So a detection
also says whether the message has a word only sentences have (``sentence``): a Chinese
function character (我, 是, 吗, 怎, 请 …; none that Japanese kanji compounds or place names
use), hiragana for Japanese (its particles and endings), an English or Tagalog function word
for Latin; Thai letters are Thai. wxbot.dialog.language decides what it takes to change a
user's language (``switches``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LATIN_WORD = re.compile(r"[a-zA-Z\u00C0-\u024F]+(?:['’-][a-zA-Z\u00C0-\u024F]+)*")
# Addresses are Latin letters in no language: a Chinese user typing 「me@mail.qq.com」 (an
# email a flow asks for) or a link was taken for a firm English message and answered in
# English from then on. Taken out before the words are counted.
_ADDRESS = re.compile(
    r"(?:https?://|www\.)\S+"  # links
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # email addresses
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}\b",  # bare domains: qq.com, gov.cn
    re.ASCII | re.IGNORECASE,
)

# Frequent Tagalog words that English does not use (and vice versa). Words both languages
# use (may, at, a) are left out of both.
_TAGALOG = """ang ng mga sa na si ni kay ko mo ka ako ikaw siya kami tayo kayo sila ito iyan iyon
    yung yun po opo ba hindi oo wala mayroon meron gusto paano ano saan bakit kailan sino
    magkano nasaan lang naman pa din rin kasi pero kung para nang dahil talaga salamat
    pakiusap sana ay akin iyo natin namin kanila niya nila nyo ninyo dito diyan doon kapag
    pag hanggang mula tungkol lamang daw raw muna nga yata tapos ngayon bakit pwede puwede
    kailangan numero aking inyong ninyong nasa walang kumusta kamusta magandang umaga hapon
    gabi paalam ingat"""
_ENGLISH = """the an is are was were be been to of and or in on for with my your i you he she it we
    they this that these those what how why when where who which can do does did not no
    please have has had want need me am will would could should from by about there here
    hi hello thanks thank yes just than then if but our their its"""
TAGALOG_WORDS = frozenset(_TAGALOG.split())
ENGLISH_WORDS = frozenset(_ENGLISH.split())

# Characters of Chinese sentences (pronouns, particles, question words, simplified forms)
# that neither names nor Japanese kanji compounds use: not 不 (不具合), 有 (有料), 会 (会員),
# 的 (目的), 都 (京都), 和 (令和), 那 (那覇), 个 (「第二个」 is a pick, not a sentence).
# 了 counts outside the Japanese words that hold it (完了, 了解).
CHINESE_FUNCTION_CHARS = frozenset(
    "是我你您她们这哪谁什怎么吗呢吧啊呀嘛哦嗯啥咋呗请给让还说帮查没问为也把很吃谢找丢了"
)
_JAPANESE_WITH_LIAO = re.compile(r"了解|完了|終了|修了|満了")

STRONG_WEIGHT = 3.0  # a script needs this much weight (≈ words) for a strong detection
STRONG_SHARE = 0.75  # ... and this share of the message's weight


@dataclass(frozen=True)
class Detection:
    language: str
    strong: bool  # one script clearly dominating a message of a few words
    sentence: bool = True  # it has a word only sentences have, not only names (see above)


def _counts(text: str) -> tuple[int, int, int]:
    thai = kana = han = 0
    for ch in text:
        code = ord(ch)
        if 0x0E00 <= code <= 0x0E7F:
            thai += 1
        elif 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            if code not in (0x30FB, 0x30FC):  # ・ and ー also appear in Chinese text
                kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
            han += 1
    return thai, kana, han


def latin_language(words: list[str]) -> str:
    lowered = [w.lower() for w in words]
    tagalog = sum(w in TAGALOG_WORDS for w in lowered)
    english = sum(w in ENGLISH_WORDS for w in lowered)
    return "tl" if tagalog > english else "en"


def detect(text: str) -> Detection | None:
    """The language of ``text``, or None when it has no letters at all (「123」, 「👍」)."""
    thai, kana, han = _counts(text)
    words = _LATIN_WORD.findall(_ADDRESS.sub(" ", text))
    # Rough weights in "words": a Han or kana character carries about a word's meaning,
    # Thai is written without spaces (a word is ~3 letters).
    weights = {"th": thai / 3, "cjk": float(han + kana), "latin": float(len(words))}
    script, weight = max(weights.items(), key=lambda item: item[1])
    total = sum(weights.values())
    if weight == 0:
        return None
    if script == "th":
        language = "th"
    elif script == "cjk":
        language = "ja" if kana else "zh"
    else:
        language = latin_language(words)
    strong = weight >= STRONG_WEIGHT and weight / total >= STRONG_SHARE
    return Detection(language, strong, _sentence(text, language, words))


def _sentence(text: str, language: str, words: list[str]) -> bool:
    """Whether ``text`` has a word of a sentence in ``language``, not only names."""
    if language == "zh":
        return any(ch in CHINESE_FUNCTION_CHARS for ch in _JAPANESE_WITH_LIAO.sub("", text))
    if language == "ja":
        return any(0x3041 <= ord(ch) <= 0x309F for ch in text)  # hiragana
    if language in ("en", "tl"):
        return any(w.lower() in ENGLISH_WORDS or w.lower() in TAGALOG_WORDS for w in words)
    return True
