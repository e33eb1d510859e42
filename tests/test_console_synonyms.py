"""The 同义词 and 学到的问法 tabs: synonym groups searched, added, edited, deleted (and the bot
matching with them at once); learned wordings listed and undone."""

from __future__ import annotations

from tests.console_helpers import (
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
    post,
)
from tests.helpers import content, say
from tests.test_console_pages import add_entry, entry
from wxbot.qa import learning
from wxbot.qa import synonyms as synonym_store


def groups(app) -> dict[int, list[str]]:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return {g.id: g.words for g in synonym_store.load(conn)}


def group_with(app, word: str) -> int:  # type: ignore[no-untyped-def]
    return next(gid for gid, words in groups(app).items() if word in words)


def test_a_new_group_makes_the_bot_understand_a_question(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    add_entry(app, ["能开收据吗"], "可以，在订单页申请。")
    add_entry(app, ["营业时间是几点"], "9:00-17:00。")
    assert (
        content(say(bot, "o_1", "小票能开吗")) != "可以，在订单页申请。"
    )  # not sure: not answered
    resp = post(admin, "/admin/synonyms", words="收据, 小票  凭条")
    assert resp.status_code == 303 and "done=created" in resp.headers["Location"]
    gid = group_with(app, "小票")
    assert groups(app)[gid] == ["收据", "小票", "凭条"]
    assert content(say(bot, "o_1", "小票能开吗")) == "可以，在订单页申请。"
    page = admin.get(resp.headers["Location"]).text
    assert "已添加同义词组" in page and f'id="syn-{gid}"' in page
    row = page[page.index(f'id="syn-{gid}"') :]
    assert '<span class="chip">凭条</span>' in row[: row.index("</tr>")]
    assert "管理后台" in row[: row.index("</tr>")]  # its source


def test_search_edit_and_delete(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    starter = len(groups(app))  # migration 0005 seeds the starter groups
    post(admin, "/admin/synonyms", words="收据 小票")
    gid = group_with(app, "小票")
    found = admin.get("/admin/synonyms?q=小票").text
    assert f'id="syn-{gid}"' in found and "共 1 条" in found
    assert "没有找到" in admin.get("/admin/synonyms?q=没有这个词").text
    resp = post(admin, f"/admin/synonyms/{gid}?q=小票", words="收据 小票 发票联")
    assert resp.status_code == 303 and "q=" in resp.headers["Location"]
    assert groups(app)[gid] == ["收据", "小票", "发票联"]
    resp = post(admin, f"/admin/synonyms/{gid}/delete")
    assert resp.status_code == 303 and gid not in groups(app)
    assert len(groups(app)) == starter
    assert post(admin, f"/admin/synonyms/{gid}/delete").status_code == 404
    missing = post(admin, f"/admin/synonyms/{gid}", words="甲 乙")
    assert missing.status_code == 404 and "同义词组" in missing.text


def test_refusals_are_chinese_and_keep_what_was_typed(app, admin) -> None:  # type: ignore[no-untyped-def]
    before = groups(app)
    one = post(admin, "/admin/synonyms", words="收据")
    assert one.status_code == 422 and "至少要有两个不同的词" in one.text
    assert 'value="收据"' in one.text  # typed words are back in the box
    long = post(admin, "/admin/synonyms", words="收据 " + "长" * 21)
    assert long.status_code == 422 and "不能超过 20 个字" in long.text
    post(admin, "/admin/synonyms", words="收据 小票")
    gid = group_with(app, "小票")
    bad = post(admin, f"/admin/synonyms/{gid}", words="只有一个")
    assert bad.status_code == 422 and 'value="只有一个"' in bad.text
    assert '<details class="edit" open>' in bad.text  # the group being edited stays open
    assert groups(app)[gid] == ["收据", "小票"]
    assert len(groups(app)) == len(before) + 1


def test_typed_markup_is_shown_as_text(app, admin) -> None:  # type: ignore[no-untyped-def]
    for attack in ['"><img/src=x/onerror=alert(1)>', "<script>alert(1)</script>"]:
        resp = post(admin, "/admin/synonyms", words=attack)  # one word: refused, shown again
        assert resp.status_code == 422
        assert attack not in resp.text and "<img/src" not in resp.text
        assert "&lt;" in resp.text
    post(admin, "/admin/synonyms", words='"><img src=x onerror=alert(1)> <script>')
    page = admin.get("/admin/synonyms").text
    assert "<img src=x" not in page and "<script>alert" not in page


def learn(app, question: str, entry_id: int) -> None:  # type: ignore[no-untyped-def]
    """Two users pick ``entry_id`` for ``question`` from a did-you-mean list."""
    with app.extensions["wxbot.engine"].begin() as conn:
        for openid in ("o_a", "o_b"):
            learning.record_pick(conn, openid, question, entry_id, now=1.0, min_users=2)


def test_learned_wordings_are_listed_and_undone(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    refund = add_entry(app, ["怎么申请退款"], "在订单页申请退款。")
    assert "还没有学到的问法" in admin.get("/admin/learned").text
    learn(app, "钱能退回来吗", refund)
    learn(app, '<img src=x onerror="alert(1)">退款', refund)
    assert entry(app, refund).questions[1:] == [
        "钱能退回来吗",
        '<img src=x onerror="alert(1)">退款',
    ]
    page = admin.get("/admin/learned").text
    assert "至少 2 个不同的用户" in page and "2 人" in page
    assert "「我不太确定你想问的是哪一个：」" in page  # the text users read, from the catalogue
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert f"#{refund}</a> 怎么申请退款" in page
    with app.extensions["wxbot.engine"].connect() as conn:
        items = {i["question"]: i["id"] for i in learning.list_learned(conn)[1]}
    resp = post(admin, f"/admin/learned/{items['钱能退回来吗']}/undo")
    assert resp.status_code == 303
    assert "已撤销「钱能退回来吗」" in admin.get(resp.headers["Location"]).text
    assert "钱能退回来吗" not in entry(app, refund).questions
    again = post(admin, f"/admin/learned/{items['钱能退回来吗']}/undo")
    assert again.status_code == 404 and "已经不在了" in again.text
