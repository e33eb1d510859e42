"""Links and email addresses are Latin letters in no language: a Chinese user who types one
(an email a flow asks for, a link) is not switched to English. Before, 「me@x.cn」 counted as
three English words, a strong detection, and every later reply was in English."""

from __future__ import annotations

import pytest

from tests.helpers import content, say
from wxbot.dialog import language, words
from wxbot.i18n import translate
from wxbot.i18n.detect import detect


@pytest.mark.parametrize(
    "text",
    ["me@x.cn", "a@b.cn", "zhang.san+vip@mail.example.com.cn", "qq.com", "https://a.b/c?d=e"],
)
def test_an_address_alone_says_nothing(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的邮箱是 me@mail.qq.com", "zh"),
        ("看这个 https://weixin.qq.com/s/AbCdEfGh 怎么打不开", "zh"),
        ("my email is me@x.cn please help", "en"),
        ("see https://example.com/a/b for the details", "en"),
    ],
)
def test_the_words_around_an_address_decide(text: str, expected: str) -> None:
    found = detect(text)
    assert found is not None and found.language == expected


def test_a_chinese_user_typing_an_email_is_still_answered_in_chinese(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_mail", "你好")
    for text in ("me@x.cn", "zhang.san@example.com", "www.example.com/help"):
        say(bot, "o_mail", text)
        with bot.engine.connect() as conn:
            assert language.stored(conn, "o_mail")[0] == "zh", text
    reply = content(say(bot, "o_mail", "取消"))
    assert reply == translate(words.NOTHING_TO_CANCEL, "zh")
