"""Unanswered questions grouped by meaning in the console: a whole group taught or attached in
one step, a question left out by unticking it, errors that keep what was typed."""

from __future__ import annotations

import re

from tests.console_helpers import (
    admin_fixture,  # noqa: F401 - the admin fixture
    console_app_fixture,  # noqa: F401 - the app fixture
    post,
)
from tests.helpers import content, say
from tests.test_console_pages import add_entry, entry, unanswered_ids


def ask_weekend(bot) -> None:  # type: ignore[no-untyped-def]
    """周末上班吗 (twice), 周六开门吗 (the same, by the starter synonyms), and an outsider."""
    for text in ("周末上班吗", "周末上班吗", "周六开门吗", "能开电子发票吗"):
        say(bot, "o_u", text)


def group_article(page: str, leader_id: int) -> str:
    match = re.search(
        rf'<article class="card item group" id="g-{leader_id}".*?</article>', page, re.S
    )
    assert match, f"no group led by {leader_id}"
    return match.group(0)


def test_the_grouped_view_shows_each_group_with_its_members(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    hours = add_entry(app, ["营业时间是几点"], "9:00-17:00。")
    ask_weekend(bot)
    ids = unanswered_ids(app)
    page = admin.get("/admin/unanswered?sort=grouped").text
    assert page.index("周末上班吗") < page.index("能开电子发票吗")  # the biggest group first
    group = group_article(page, ids["周末上班吗"])
    assert "共 3 次" in group and "2 种问法" in group
    assert f'name="similar" value="{ids["周六开门吗"]}" checked' in group
    assert "整组作为新条目回答" in group and "整组归入已有条目" in group
    assert f'name="entry_id" value="{hours}"' in group  # the matcher's guess, in the group form
    single = group_article(page, ids["能开电子发票吗"])
    assert 'name="similar"' not in single and "整组" not in single
    # the one-by-one views are still there
    assert "周六开门吗" in admin.get("/admin/unanswered?sort=count").text


def test_a_whole_group_is_taught_in_one_step(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    ask_weekend(bot)
    ids = unanswered_ids(app)
    resp = post(
        admin,
        f"/admin/unanswered/{ids['周末上班吗']}/answer",
        answer="周末 10:00-16:00 营业。",
        similar=str(ids["周六开门吗"]),
        offered=str(ids["周六开门吗"]),
        view="grouped",
    )
    assert resp.status_code == 303
    assert "sort=grouped" in resp.headers["Location"] and "n=2" in resp.headers["Location"]
    assert "已教会（2 个问题）" in admin.get(resp.headers["Location"]).text
    assert content(say(bot, "o_v", "周六开门吗")) == "周末 10:00-16:00 营业。"
    assert content(say(bot, "o_v", "周末上班吗")) == "周末 10:00-16:00 营业。"
    assert set(unanswered_ids(app)) == {"能开电子发票吗"}


def test_a_group_is_attached_without_the_question_unticked(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    hours = add_entry(app, ["营业时间是几点"], "9:00-17:00。")
    ask_weekend(bot)
    say(bot, "o_u", "周末开门吗")
    ids = unanswered_ids(app)
    members = group_article(admin.get("/admin/unanswered?sort=grouped").text, ids["周末上班吗"])
    assert "周末开门吗" in members and "周六开门吗" in members
    resp = post(  # the admin unticked 周末开门吗: it stays on the list
        admin,
        f"/admin/unanswered/{ids['周末上班吗']}/attach",
        entry_id=str(hours),
        similar=str(ids["周六开门吗"]),
        answer="",  # the group form's (empty) answer box comes along
        view="grouped",
    )
    assert resp.status_code == 303 and "done=attached" in resp.headers["Location"]
    assert entry(app, hours).questions == ["营业时间是几点", "周末上班吗", "周六开门吗"]
    assert set(unanswered_ids(app)) == {"能开电子发票吗", "周末开门吗"}


def test_a_refused_group_answer_keeps_the_ticks_and_what_was_typed(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    for text in ("周末上班吗", "周末上班吗", "周六营业吗", "星期六开门吗"):
        say(bot, "o_u", text)
    ids = unanswered_ids(app)
    leader, a, b = ids["周末上班吗"], ids["周六营业吗"], ids["星期六开门吗"]
    resp = post(
        admin,
        f"/admin/unanswered/{leader}/answer",
        answer="   ",
        similar=str(a),
        offered=[str(a), str(b)],
    )
    assert resp.status_code == 422 and "答案不能为空" in resp.text
    assert f'name="similar" value="{a}" checked' in resp.text
    assert f'name="similar" value="{b}">' in resp.text  # offered, not ticked: still unticked
    assert 'name="questions"' not in resp.text
    assert len(unanswered_ids(app)) == 3  # nothing stored
    bad = post(admin, f"/admin/unanswered/{leader}/answer", answer="x", similar="abc")
    assert bad.status_code == 400
    gone = post(admin, f"/admin/unanswered/{leader}/answer", answer="x", similar="424242")
    assert gone.status_code == 404 and "已经不在列表里" in gone.text
    assert len(unanswered_ids(app)) == 3


def test_the_group_pages_work_without_javascript(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    hours = add_entry(app, ["营业时间是几点"], "9:00-17:00。")
    ask_weekend(bot)
    ids = unanswered_ids(app)
    leader, member = ids["周末上班吗"], ids["周六开门吗"]
    page = admin.get(f"/admin/unanswered/{leader}/attach?group=1&q=营业&view=grouped").text
    assert f'name="similar" value="{member}" checked' in page
    assert f'name="entry_id" value="{hours}"' in page and 'formaction="' in page
    teach = admin.get(f"/admin/unanswered/{leader}/answer?group=1").text
    assert f'name="similar" value="{member}" checked' in teach
    assert "周六开门吗" in teach and 'name="questions"' not in teach


def test_a_group_is_dismissed_in_one_step(app, admin, bot) -> None:  # type: ignore[no-untyped-def]
    ask_weekend(bot)
    ids = unanswered_ids(app)
    resp = post(
        admin,
        f"/admin/unanswered/{ids['周末上班吗']}/dismiss",
        similar=str(ids["周六开门吗"]),
        view="grouped",
    )
    assert resp.status_code == 303 and "sort=grouped" in resp.headers["Location"]
    assert set(unanswered_ids(app)) == {"能开电子发票吗"}
