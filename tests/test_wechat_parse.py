"""Safe XML parsing and the typed Inbound each WeChat message type becomes."""

from __future__ import annotations

import pytest

from wxbot.wechat.parse import BadMessage, dedup_key, parse_xml, to_inbound
from wxbot.wechat.simulator import WeChatSimulator

SIM = WeChatSimulator("t", "wxapp", clock=lambda: 1_800_000_000)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Content>&lol3;</Content></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""
PARAM_ENTITY = """<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><xml/>"""
BARE_DOCTYPE = "<!DOCTYPE xml><xml><MsgType>text</MsgType></xml>"


def inbound(fields: dict) -> object:
    return to_inbound(parse_xml(SIM.build_xml(fields)))


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE, PARAM_ENTITY, BARE_DOCTYPE])
def test_dtds_and_entities_are_refused(doc: str) -> None:
    with pytest.raises(BadMessage, match="DTD|entities"):
        parse_xml(doc.encode())


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"not xml",
        b"<xml>",
        b"<xml><a></xml>",
        b"\xff\xfe<\x00x\x00",
        b"<xml>&undefined;</xml>",
        b'<?xml version="1.0" encoding="bogus"?><xml/>',
        b'<?xml version="1.0" encoding="utf-16"?><xml/>',
    ],
)
def test_malformed_xml(doc: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_xml(doc)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(BadMessage, match="nested"):
        parse_xml(b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>")
    assert parse_xml(b"<xml>" + b"<a>" * 7 + b"x" + b"</a>" * 7 + b"</xml>")


def test_root_must_be_xml() -> None:
    with pytest.raises(BadMessage, match="root"):
        parse_xml(b"<html><a>1</a></html>")


def test_nested_and_repeated_elements() -> None:
    fields = parse_xml(b"<xml><A>1</A><B><item><T>x</T></item><item><T>y</T></item></B><C/></xml>")
    assert fields == {"A": "1", "B": {"item": [{"T": "x"}, {"T": "y"}]}, "C": ""}


def test_text() -> None:
    m = inbound(SIM.text("  你好 ]]> world ", "u1", MsgId=42))
    assert (m.kind, m.openid, m.msg_id, m.account) == ("text", "u1", "42", "gh_wxbot_sim")
    assert m.text == "  你好 ]]> world "  # CDATA split by the builder is joined back intact
    assert m.create_time == 1_800_000_000
    assert m.dedup_key == "m|u1|42"


def test_voice_with_and_without_recognition() -> None:
    assert inbound(SIM.voice("天气 北京", "u1")).text == "天气 北京"
    m = inbound(SIM.voice("", "u1"))
    assert (m.kind, m.text, m.media_id) == ("voice", "", "sim-voice")
    no_field = SIM.voice("", "u1")
    del no_field["Recognition"]
    assert inbound(no_field).text == ""


def test_image_video_shortvideo_link() -> None:
    img = inbound(SIM.image("u1", media_id="m1"))
    assert (img.kind, img.media_id, img.url) == ("image", "m1", "http://127.0.0.1/sim.jpg")
    assert inbound(SIM.video("u1")).kind == "video"
    assert inbound(SIM.video("u1", short=True)).kind == "shortvideo"
    link = inbound(SIM.link("标题", "http://example.com/a", "u1"))
    assert (link.kind, link.text, link.url) == ("link", "标题", "http://example.com/a")


def test_location_message() -> None:
    m = inbound(SIM.location(39.9042, 116.4074, "北京市", "u1"))
    assert (m.kind, m.latitude, m.longitude, m.label) == ("location", 39.9042, 116.4074, "北京市")


@pytest.mark.parametrize("lat", ["north", "nan", "1e9", "", "91", "-90.5", "inf"])
def test_location_with_bad_coordinates(lat: str) -> None:
    with pytest.raises(BadMessage):
        inbound({**SIM.location(1, 2), "Location_X": lat})


@pytest.mark.parametrize(("field", "value"), [("Location_Y", "180.5"), ("Location_Y", "-181")])
def test_location_with_a_longitude_off_the_earth(field: str, value: str) -> None:
    with pytest.raises(BadMessage, match="out of range"):
        inbound({**SIM.location(1, 2), field: value})


@pytest.mark.parametrize(("name", "value"), [("Latitude", "95"), ("Longitude", "200")])
def test_a_location_report_off_the_earth(name: str, value: str) -> None:
    fields = {"Latitude": "23.1", "Longitude": "113.3", "Precision": "1", name: value}
    with pytest.raises(BadMessage, match="out of range"):
        inbound(SIM.event("LOCATION", "", "u1", **fields))


def test_the_poles_and_the_date_line_are_places() -> None:
    m = inbound({**SIM.location(1, 2), "Location_X": "-90", "Location_Y": "180"})
    assert (m.latitude, m.longitude) == (-90.0, 180.0)


def test_events() -> None:
    sub = inbound(SIM.event("subscribe", "", "u1"))
    assert (sub.kind, sub.event, sub.event_key, sub.is_event) == ("event", "subscribe", "", True)
    scene = inbound(SIM.event("subscribe", "qrscene_123", "u1", Ticket="TICKET"))
    assert (scene.event, scene.event_key) == ("subscribe", "123")
    assert inbound(SIM.event("unsubscribe", "", "u1")).event == "unsubscribe"
    scan = inbound(SIM.event("SCAN", "123", "u1", Ticket="T"))
    assert (scan.event, scan.event_key) == ("scan", "123")
    loc = inbound(
        SIM.event("LOCATION", "", "u1", Latitude="23.1", Longitude="113.3", Precision="1")
    )
    assert (loc.event, loc.latitude, loc.longitude) == ("location", 23.1, 113.3)
    click = inbound(SIM.event("CLICK", "MENU_WEATHER", "u1"))
    assert (click.event, click.event_key) == ("click", "MENU_WEATHER")
    view = inbound(SIM.event("VIEW", "http://example.com/x", "u1"))
    assert (view.event, view.event_key, view.url) == (
        "view",
        "http://example.com/x",
        "http://example.com/x",
    )


def test_unknown_types_still_reach_the_bot() -> None:
    m = inbound(SIM.message("file", "u1", Title="a.pdf"))
    assert m.kind == "unknown" and m.dedup_key.startswith("m|u1|")
    e = inbound(SIM.event("TEMPLATESENDJOBFINISH", "", "u1", Status="success"))
    assert (e.kind, e.event) == ("event", "templatesendjobfinish")


def test_dedup_keys() -> None:
    msg = {k: str(v) for k, v in SIM.text("hi", "u1", MsgId=7).items()}
    assert dedup_key(msg | {"CreateTime": "1"}) == dedup_key(msg | {"CreateTime": "2"}) == "m|u1|7"
    assert dedup_key(msg) != dedup_key(msg | {"FromUserName": "u2"})  # MsgId alone may collide
    ev = {k: str(v) for k, v in SIM.event("CLICK", "K", "u1").items()}
    assert dedup_key(ev) == "e|u1|1800000000|event|CLICK|K"
    assert dedup_key(ev) != dedup_key(ev | {"EventKey": "K2"})
    assert dedup_key(ev) != dedup_key(ev | {"CreateTime": "1800000001"})
    long_view = SIM.event("VIEW", "http://example.com/" + "x" * 500, "u1")
    key = dedup_key({k: str(v) for k, v in long_view.items()})
    assert len(key) <= 191 and key.startswith("h|u1|")


@pytest.mark.parametrize(
    "missing", ["ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId"]
)
def test_missing_fields(missing: str) -> None:
    fields = SIM.text("hi", "u1")
    del fields[missing]
    with pytest.raises(BadMessage, match=missing):
        inbound(fields)


def test_event_without_event_name() -> None:
    fields = SIM.event("CLICK", "K", "u1")
    del fields["Event"]
    with pytest.raises(BadMessage, match="Event"):
        inbound(fields)


@pytest.mark.parametrize(
    "doc",
    [
        b"<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        b"<MsgType>text</MsgType><Content><b>x</b></Content><MsgId>1</MsgId></xml>",
        b"<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>yesterday"
        b"</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
    ],
)
def test_wrongly_shaped_fields(doc: bytes) -> None:
    with pytest.raises(BadMessage):
        to_inbound(parse_xml(doc))


def test_overlong_openid() -> None:
    with pytest.raises(BadMessage, match="OpenID"):
        inbound(SIM.text("hi", "o" * 65))
