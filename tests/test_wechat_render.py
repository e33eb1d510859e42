"""Every reply value renders as the matching wechatpy passive reply, and reads back the same."""

from __future__ import annotations

import pytest

from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import (
    Article,
    Image,
    Music,
    News,
    Silent,
    Text,
    TransferToHuman,
    Video,
    Voice,
)
from wxbot.wechat.parse import parse_xml
from wxbot.wechat.render import SUCCESS, render
from wxbot.wechat.simulator import reply_from_fields

MSG = Inbound(openid="u1", kind="text", dedup_key="m|u1|1", text="hi", account="gh_acct")
EVENT = Inbound(openid="u1", kind="event", dedup_key="e|u1", event="click", account="gh_acct")
ARTICLES = tuple(Article(f"t{i}", f"d{i}", f"http://img/{i}", f"http://url/{i}") for i in range(10))


@pytest.mark.parametrize(
    "reply",
    [
        Text("你好，世界"),
        Image("media-1"),
        Voice("media-2"),
        Video("media-3", "标题", "描述"),
        Music("晴天", "周杰伦", "http://m/1.mp3", "http://m/1hq.mp3", "thumb"),
        News((Article("标题", "描述", "http://img", "http://url"),)),
        TransferToHuman(),
    ],
)
def test_round_trip(reply) -> None:  # type: ignore[no-untyped-def]
    xml = render(reply, MSG, 1_800_000_000)
    fields = parse_xml(xml.encode())
    assert fields["ToUserName"] == "u1" and fields["FromUserName"] == "gh_acct"
    assert fields["CreateTime"] == "1800000000"
    assert reply_from_fields(fields) == reply


def test_transfer_uses_wechat_type() -> None:
    assert "<MsgType><![CDATA[transfer_customer_service]]></MsgType>" in render(
        TransferToHuman(), MSG, 1
    )


def test_music_without_hq_url_falls_back_to_the_normal_url() -> None:
    fields = parse_xml(render(Music("a", "b", "http://m/1.mp3"), MSG, 1).encode())
    assert fields["Music"]["HQMusicUrl"] == "http://m/1.mp3"


def test_news_article_limits() -> None:
    one = reply_from_fields(parse_xml(render(News(ARTICLES), MSG, 1).encode()))
    assert one == News(ARTICLES[:1])  # a reply to a user message shows one article
    eight = reply_from_fields(parse_xml(render(News(ARTICLES), EVENT, 1).encode()))
    assert eight == News(ARTICLES[:8])  # replies to events may carry up to eight


@pytest.mark.parametrize("reply", [Silent(), Text(""), News(())])
def test_silent_and_empty_replies_are_success(reply) -> None:  # type: ignore[no-untyped-def]
    assert render(reply, MSG, 1) == SUCCESS


def test_cdata_injection_and_control_characters_are_neutralised() -> None:
    evil = "a]]><MsgType>image</MsgType><![CDATA[b\x00\x07c"
    xml = render(Text(evil), MSG, 1)
    fields = parse_xml(xml.encode())
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "a]]><MsgType>image</MsgType><![CDATA[bc"


def test_unknown_reply_type_is_an_error_for_the_caller() -> None:
    with pytest.raises(TypeError):
        render(object(), MSG, 1)  # type: ignore[arg-type]
