"""Normalisation, question identity and tokenisation (pure, no database)."""

from __future__ import annotations

from wxbot.qa.text import STOPWORDS, get_analyzer, normalize, question_key


def test_normalize_folds_width_case_punctuation_and_traditional() -> None:
    assert normalize("ＷｉＦｉ密碼是多少？！") == "wifi密码是多少"
    assert normalize("  How   do I reset my PASSWORD?? ") == "how do i reset my password"
    assert normalize("請問營業時間") == "请问营业时间"
    assert normalize("退款😀，怎么弄。。。") == "退款 怎么弄"
    assert normalize("？？？") == ""


def test_question_key_ignores_what_users_do_not_mean() -> None:
    assert question_key("怎么退款？") == question_key("怎么 退款")
    assert question_key("怎麼退款") == question_key("怎么退款")
    assert question_key("ＡＰＰ下载") == question_key("app下载")
    assert question_key("怎么退款") != question_key("怎么付款")
    assert question_key("!!!") == ""
    assert len(question_key("x" * 5000)) == 40


def test_terms_mix_words_and_characters() -> None:
    terms = get_analyzer().analyze("营业时间是几点")
    assert "营业时间" in terms or {"营业", "时间"} <= set(terms)
    assert {"营", "业", "时", "间"} <= set(terms)  # characters survive typos in words
    assert "是" in terms and "是" in STOPWORDS  # function words kept whole, weighed down
    assert "间是" not in terms  # no bigrams across word boundaries


def test_terms_of_latin_words_and_digits() -> None:
    assert get_analyzer().analyze("App 2.0 下载") == ["app", "2", "0", "下载", "下", "载"]


def test_analyzer_is_loaded_once() -> None:
    assert get_analyzer() is get_analyzer()
