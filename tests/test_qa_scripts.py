"""Questions written in kana, Thai, accented Latin and other scripts are found by words.

The bot answers in Chinese, English, Thai, Tagalog and Japanese, but the word index only
had terms for hanzi and unaccented Latin: a question in hiragana or Thai had no term at all
(「ありがとう」, 「ขอบคุณ」 were never found without an embedding service), Thai vowels and
tone marks split Thai words in two, and 「niño」 was two words. Identity (question_key) is
unchanged, so keys stored by earlier releases still match."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import content, say
from wxbot.qa import writer
from wxbot.qa.importer import import_files
from wxbot.qa.text import WEAK, get_analyzer, normalize, question_key


def test_thai_words_keep_their_vowels_and_tone_marks() -> None:
    assert normalize("สวัสดีครับ!") == "สวัสดีครับ"
    assert normalize("ขอบคุณ ค่ะ") == "ขอบคุณ ค่ะ"


def test_an_emoji_variation_selector_is_not_kept() -> None:
    assert normalize("❤️好的") == "好的"
    assert normalize("好\ufe0f的") == "好 的"


def test_question_keys_are_those_of_earlier_releases() -> None:
    """Marks were dropped from keys before: a Thai question stored then keeps its key."""
    assert question_key("สวัสดี") == hashlib.sha1("สวสด".encode()).hexdigest()
    assert question_key("ขอบคุณ") == question_key("ขอบคณ")
    assert question_key("怎么退款？") == hashlib.sha1("怎么退款".encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ありがとう", {WEAK + "あり", WEAK + "とう", WEAK + "あ"}),  # hiragana: weak grams
        ("カード", {"かー", "ーど", "か"}),  # katakana: grams, folded to hiragana
        ("ขอบคุณ", {"ขอบ", "คุณ", "ขอ"}),  # Thai: bigrams and trigrams
        ("niño piña", {"niño", "piña"}),  # accented Latin: whole words
        ("привет мир", {"привет", "мир"}),  # any other script: whole words
    ],
)
def test_every_script_has_terms(text: str, expected: set[str]) -> None:
    terms = set(get_analyzer().analyze(text))
    assert expected <= terms, terms


def test_a_thai_letter_alone_is_not_a_term() -> None:
    assert "ข" not in get_analyzer().analyze("ขอบคุณ")


def test_mixed_japanese_keeps_kanji_and_kana() -> None:
    terms = set(get_analyzer().analyze("東京のホテル"))
    assert {"东京", WEAK + "の", "ほて", "てる"} <= terms


def test_hiragana_weighs_like_function_words() -> None:
    """Particles and endings (は, ですか) are rare in a small base: by idf alone they would
    weigh like content and keep 「返金まだですか」 from 「返金はいつされますか」."""
    terms = get_analyzer().analyze("返金はいつされますか")
    assert "返金" in terms
    assert all(t[0] == WEAK for t in terms if "\u3040" <= t[-1] <= "\u309f")


ENTRIES = [
    (["ありがとう", "ありがとうございます"], "どういたしまして！", "ja"),
    (["こんにちは"], "こんにちは！", "ja"),
    (["カードをなくしました"], "カードの利用停止はアプリから。", "ja"),
    (["ログインできません"], "パスワードを再設定してください。", "ja"),
    (["返金はいつされますか"], "返品到着後5日以内に返金します。", "ja"),
    (["ขอบคุณ"], "ยินดีค่ะ", "th"),
    (["สวัสดี"], "สวัสดีค่ะ!", "th"),
    (["บัตรหายทำอย่างไร"], "อายัดบัตรได้ในแอป", "th"),
    (["salamat"], "Walang anuman!", "tl"),
    (["谢谢"], "不客气", "zh"),
]


@pytest.fixture
def lexical_bot(make_app, clock):  # type: ignore[no-untyped-def]
    """Words only (no embedding service: the default)."""
    app = make_app(embedding_url=None)
    with app.extensions["wxbot.engine"].begin() as conn:
        for questions, answer, language in ENTRIES:
            writer.create_entry(
                conn, questions, answer, now=clock(), source="test", language=language
            )
    return app.extensions["wxbot.bot"]


@pytest.mark.parametrize(
    ("asked", "answer"),
    [
        ("ありがとう", "どういたしまして！"),
        ("ありがとうございました", "どういたしまして！"),
        ("こんにちは！", "こんにちは！"),
        ("カードをなくした", "カードの利用停止はアプリから。"),
        ("ろぐいんできない", "パスワードを再設定してください。"),  # katakana typed in hiragana
        ("返金まだですか", "返品到着後5日以内に返金します。"),
        ("ขอบคุณครับ", "ยินดีค่ะ"),
        ("สวัสดีค่ะ", "สวัสดีค่ะ!"),
        ("บัตรหายต้องทำอย่างไร", "อายัดบัตรได้ในแอป"),
        ("maraming salamat po", "Walang anuman!"),
    ],
)
def test_questions_in_other_scripts_are_answered_by_words(
    lexical_bot, asked: str, answer: str
) -> None:  # type: ignore[no-untyped-def]
    assert content(say(lexical_bot, "u1", asked)) == answer


STARTER = Path(__file__).resolve().parent.parent / "knowledge"


@pytest.fixture
def starter_bot(make_app, clock):  # type: ignore[no-untyped-def]
    """The quick start's knowledge (scripts/run.sh): the starter FAQ and its small talk."""
    app = make_app(embedding_url=None)
    files = [str(STARTER / "faq.txt"), str(STARTER / "faq-languages.txt")]
    report = import_files(app.extensions["wxbot.engine"], files, now=clock())
    assert report.written and not report.errors
    return app.extensions["wxbot.bot"]


@pytest.mark.parametrize(
    ("asked", "starts"),
    [
        ("hello", "Hello!"),
        ("thank you", "You're welcome"),
        ("สวัสดีครับ", "สวัสดี!"),
        ("salamat po", "Walang anuman"),
        ("こんにちは", "こんにちは！"),
        ("ありがとうございます", "どういたしまして"),
        ("你好", "你好！"),
        ("谢谢", "不客气"),
    ],
)
def test_the_starter_small_talk_in_every_language(starter_bot, asked: str, starts: str) -> None:  # type: ignore[no-untyped-def]
    assert content(say(starter_bot, "u_" + asked, asked)).startswith(starts)
