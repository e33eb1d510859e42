"""The console's attach buttons show how similar an entry is as a share of the best score the
matcher can give (its rankers' weights summed), never above 100%: the raw confidence, a
weighted sum of up to 1.93, read 「相似度 146%」 (found by helper-64)."""

from __future__ import annotations

import re

from tests.helpers import say
from wxbot.admin.ops import Admin
from wxbot.qa import writer

TOKEN = "similarity-admin-token"


def test_similarity_is_a_share_of_the_best_possible(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(admin_token=TOKEN)
    bot = app.extensions["wxbot.bot"]
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["信用卡怎么申请"], "在手机银行申请。", now=1.0, source="api")
        writer.create_entry(conn, ["营业时间"], "早九晚五。", now=1.0, source="api")
    say(bot, "u1", "信用卡怎么申请呢？我想要申请一张信用卡")  # close to the first: not sure enough
    guesses = Admin.of(app).similar_entries("信用卡怎么申请 信用卡 申请")
    assert guesses and guesses[0][1] == "信用卡怎么申请"
    assert all(0.0 <= share <= 1.0 for _, _, share in guesses), guesses
    client = app.test_client()
    page = client.get("/admin/unanswered", headers={"Authorization": f"Bearer {TOKEN}"})
    shown = [int(n) for n in re.findall(r"相似度 (\d+)%", page.get_data(as_text=True))]
    assert all(0 <= n <= 100 for n in shown), shown
