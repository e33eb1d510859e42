"""Replies in five languages: the catalogues are complete, detection picks the language from
the script, the user's language sticks (across context expiry) and goes on unsubscribe."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from tests.helpers import content, event, say
from wxbot.dialog import words
from wxbot.i18n import LANGUAGES, detect, translate
from wxbot.i18n.catalog import LOCALE_DIR
from wxbot.models import UserLanguage

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"N_": None, "NP_": (1, 2)}


def _code_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT / "wxbot", method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# --- the catalogues ------------------------------------------------------------------------


def test_catalogue_template_is_up_to_date() -> None:
    with (ROOT / "wxbot/i18n/wxbot.pot").open("rb") as handle:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    assert _code_messages() == template, "run scripts/i18n.sh update"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "zh"])
def test_catalogue_translates_every_text_with_the_same_placeholders(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES/wxbot.po").open("rb") as handle:
        catalog = read_po(handle, locale=language)
    missing, broken = [], []
    for message in catalog:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            missing.append(source)
        elif any(_fields(s) != _fields(source) for s in strings):
            broken.append(source)
        elif language != "ja" and any(re.search(r"[\u4e00-\u9fff]{4,}", s) for s in strings):
            broken.append(source)  # untranslated Chinese left in (short names like 晴天 are fine)
    assert missing == [] and broken == []
    assert _code_messages() <= {m.id if isinstance(m.id, str) else m.id[0] for m in catalog}


def test_translate_falls_back_to_chinese_and_fills_placeholders() -> None:
    assert translate("没有这条翻译", "en") == "没有这条翻译"
    assert (
        translate(words.CANCELLED, "ja")
        == "キャンセルしました。ご質問があればそのまま送ってください。"
    )


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "strong"),
    [
        ("我要查充值", "zh", True),
        ("I want to check my recharge", "en", True),
        ("Paano ko ma-check ang recharge ko?", "tl", True),
        ("Gusto kong malaman kung nasaan na ang order ko", "tl", True),
        ("สวัสดีครับ ต้องการตรวจสอบการเติมเงิน", "th", True),
        ("チャージが反映されません", "ja", True),
        ("hi", "en", False),
        ("weather 北京", "zh", False),
        ("北京", "zh", False),
    ],
)
def test_detection_by_script(text: str, language: str, strong: bool) -> None:
    found = detect(text)
    assert found is not None and (found.language, found.strong) == (language, strong)


def test_no_letters_no_language() -> None:
    assert detect("13800138000") is None and detect("👍") is None


# --- the user's language -------------------------------------------------------------------


def stored_language(bot, openid: str):  # type: ignore[no-untyped-def]
    with bot.engine.connect() as conn:
        row = conn.execute(
            select(UserLanguage.language, UserLanguage.explicit).where(
                UserLanguage.openid == openid
            )
        ).first()
    return tuple(row) if row else None


def test_detected_language_answers_and_sticks(bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "สวัสดีครับ อยากถามหน่อย")) == translate(
        "这个问题我还不会回答，已经记下来了，会尽快请同事补充。你也可以换个说法再问我。", "th"
    )
    assert stored_language(bot, "u1") == ("th", False)
    assert content(say(bot, "u1", "cancel")) == translate(words.NOTHING_TO_CANCEL, "th")
    assert stored_language(bot, "u1") == ("th", False)  # a weak Latin word does not flip it
    say(bot, "u1", "I would like to ask about my order please")
    assert stored_language(bot, "u1") == ("en", False)  # a whole English sentence does


def test_language_command_wins_over_detection_and_survives_expiry(bot, clock) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "语言 en")) == "OK, I'll reply in English from now on."
    assert content(say(bot, "u1", "取消")) == translate(words.NOTHING_TO_CANCEL, "en")
    assert stored_language(bot, "u1") == ("en", True)
    clock.advance(10 * 86_400)
    bot.clean_up()  # the context is gone ...
    assert content(say(bot, "u1", "你好，我想问一下营业时间")).startswith("I can't answer")
    assert stored_language(bot, "u1") == ("en", True)  # ... the language is not
    assert content(say(bot, "u1", "语言 auto")).startswith("好的")
    assert stored_language(bot, "u1") == ("zh", False)


def test_language_command_without_a_known_language_lists_the_choices(bot) -> None:  # type: ignore[no-untyped-def]
    reply = content(say(bot, "u1", "language klingon"))
    assert "en English" in reply and "ja 日本語" in reply


def test_unsubscribe_forgets_the_language(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "language ja")
    bot.handle(event("u1", "unsubscribe"))
    assert stored_language(bot, "u1") is None


def test_welcome_and_paging_in_the_users_language(bot) -> None:  # type: ignore[no-untyped-def]
    from wxbot.dialog.paging import paginate

    say(bot, "u1", "language en")
    welcome = content(bot.handle(event("u1", "subscribe")))
    assert welcome.startswith("Thanks for following!")
    pages = paginate("word " * 200, 300, "en")
    total = len(pages)
    assert total > 1
    assert pages[0].endswith(f'(page 1/{total}; reply "more" for the next page)')
    assert pages[-1].endswith(f"(page {total}/{total}, end)")
