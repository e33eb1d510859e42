"""Console pages in real headless Chromium against what users may send: a long word with no
space (a pasted URL) must not widen a page or spill out of its card, and bidi controls in
users' words (U+202E) must not reorder the console's own text after them. And the login's
``next`` stays inside /admin/ in the browser, dot segments too."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_helpers import login
from tests.helpers import say
from tests.test_console_browser import browser, find, log_in, wait_for  # noqa: F401
from tests.wechat_fakes import http_server
from wxbot.llm import usage
from wxbot.llm.memory import CallCost
from wxbot.qa import learning, unanswered, writer

ADMIN_TOKEN = "browser-admin-token-1234"  # log_in's
LONG_URL = "https://example.com/" + "a" * 380  # one word, as a user pastes it
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: 「退款\u202e123 txt.exe」 shows as 「退款exe.txt 321」
FLOW = f"""
name: long_flow
triggers: ['{LONG_URL}x', '退款{RLO}查 询']
steps:
  - slot: order_no
    type: digits
    length: 6
    ask: {{zh: '{LONG_URL}'}}
action:
  reply: {{zh: '好的 {RLO}已登记'}}
"""

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(make_app, browser, tmp_path: Path) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]  # noqa: F811
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "long.yaml").write_text(FLOW, encoding="utf-8")
    app = make_app(admin_token=ADMIN_TOKEN, flows_dir=str(flows), alias_min_users=1)
    with http_server(app) as wechat:
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        yield {"app": app, "base": wechat.removesuffix("/wechat"), "b": browser}
    browser.get("about:blank")


def plant(app: Any, text: str) -> dict[str, Any]:
    """``text`` (and variants) everywhere users' words show: an unanswered question, an entry,
    a learned wording, a conversation, an LLM answer, a synonym, an import's file name."""
    engine = app.extensions["wxbot.engine"]
    say(app.extensions["wxbot.bot"], "o_words", text + " 请问")
    with engine.begin() as conn:
        for n in range(2):
            unanswered.record_unanswered(conn, f"{text} 问题{n}", 0)
        entry = writer.create_entry(
            conn, [f"{text} 条目", f"{text} 问法"], f"{text} 答案", now=0, source="api"
        )
        learning.record_pick(conn, "o_pick", f"{text} 学到", entry, now=0, min_users=1)
        usage.keep_answer(
            conn, "o_words", f"{text} 大模型", f"{text} 回答", "m", CallCost(1, 1, 0.0), 0
        )
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    client.post("/admin/synonyms", data={"words": f"{text}词 小票"}, headers=bearer)
    upload = io.BytesIO(f"q,a\n{text} 导入,{text}\n".encode())
    resp = client.post("/admin/import", data={"file": (upload, f"{text}.csv")}, headers=bearer)
    with engine.connect() as conn:
        first = unanswered.list_unanswered(conn, 0, 1)[1][0]["id"]
    return {"entry": entry, "job": resp.headers["Location"], "unanswered": first}


def pages(ids: dict[str, Any]) -> list[str]:
    return [
        "/admin/",
        "/admin/unanswered",
        "/admin/unanswered?sort=grouped",
        f"/admin/unanswered/{ids['unanswered']}/attach?q=条目",
        f"/admin/unanswered/{ids['unanswered']}/attach?group=1&q=条目",
        f"/admin/unanswered/{ids['unanswered']}/answer?group=1",
        "/admin/knowledge",
        f"/admin/knowledge/{ids['entry']}",
        "/admin/learned",
        "/admin/llm",
        "/admin/conversations",
        "/admin/conversations/o_words",
        "/admin/synonyms",
        "/admin/import",
        ids["job"],
        "/admin/flows",
    ]


OVERFLOW = """
const view = document.documentElement.clientWidth;
const out = [];
if (document.documentElement.scrollWidth > view) out.push('page ' + document.documentElement.scrollWidth);
for (const el of document.querySelectorAll('main *')) {
  const box = el.closest('.card, .stat') || document.querySelector('main');
  if (el === box) continue;
  const right = Math.min(box.getBoundingClientRect().right, view);
  if (el.getBoundingClientRect().right > right + 1 && !el.children.length)
    out.push(el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 30));
}
return out;
"""


def test_a_long_word_wraps_inside_its_card_on_every_page(site) -> None:  # type: ignore[no-untyped-def]
    """Before: a pasted 400-character URL, unanswered, squeezed the dashboard's chart card to
    a sliver and made the page scroll sideways; it ran out of the attach buttons, the learned
    wordings' table and a flow's step table."""
    b = site["b"]
    ids = plant(site["app"], LONG_URL)
    log_in(site)
    wide = {}
    for page in pages(ids):
        b.get(site["base"] + page)
        wait_for(b, "main")
        found = b.execute_script(OVERFLOW)
        if found:
            wide[page] = found[:3]
    assert not wide
    b.get(site["base"] + "/admin/")
    cards = b.execute_script(
        "return [...document.querySelectorAll('.columns > .card')].map(c => c.offsetWidth)"
    )
    assert min(cards) > 300, cards  # two columns of about half the page each


# Every piece of users' text with the override in it, and the text rendered after it on the
# same line: the latter must start right of where the former ends (an LTR page). Without
# isolation the override runs on to the end of the line: 「退款‮123 txt.exe」 then 「1 次」
# showed as 「退款 次 1 exe.txt 321」, the count moved into the middle of the user's words.
BIDI = """
const main = document.querySelector('main');
const texts = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
const out = [];
for (let node; (node = texts.nextNode()); ) {
  if (!node.data.includes('\\u202e')) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter(r => r.width);
  if (!rects.length) continue;  // not shown (a closed <details>, a hidden input)
  const line = rects[rects.length - 1].top;
  const right = Math.max(...rects.filter(r => Math.abs(r.top - line) < 3).map(r => r.right));
  const after = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  after.currentNode = node;
  for (let next; (next = after.nextNode()); ) {
    if (!next.data.trim()) continue;
    const r = document.createRange();
    r.selectNodeContents(next);
    const first = [...r.getClientRects()].find(x => x.width);
    if (first && Math.abs(first.top - line) < 3 && first.left < right - 1)
      out.push(JSON.stringify(node.data.slice(0, 20)) + ' then ' + JSON.stringify(next.data.trim().slice(0, 20)));
    break;
  }
}
// an attach button: 归入 #id「question」, its 」 after (right of) the question
for (const button of main.querySelectorAll('button.choice')) {
  if (!button.textContent.includes('\u202e')) continue;
  const walk = document.createTreeWalker(button, NodeFilter.SHOW_TEXT);
  let close = null;
  for (let t; (t = walk.nextNode()); ) if (t.data.includes('」')) close = t;
  const at = document.createRange();
  at.setStart(close, close.data.lastIndexOf('」'));
  at.setEnd(close, close.data.lastIndexOf('」') + 1);
  const before = document.createRange();
  before.setStart(button, 0);
  before.setEnd(close, close.data.lastIndexOf('」'));
  const right = Math.max(...[...before.getClientRects()].filter(r => r.width).map(r => r.right));
  if (at.getBoundingClientRect().left < right - 1) out.push('」 inside ' + JSON.stringify(button.textContent.trim().slice(0, 30)));
}
return out;
"""


def test_bidi_controls_in_users_words_do_not_move_the_consoles_text(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    ids = plant(site["app"], f"退款{RLO}123 txt.exe")
    log_in(site)
    moved = {}
    for page in pages(ids):
        if page == "/admin/flows":
            continue  # a flow's texts come from the operator's YAML files, not from users
        b.get(site["base"] + page)
        wait_for(b, "main")
        for details in b.find_elements("css selector", "main details"):
            b.execute_script("arguments[0].open = true", details)
        found = b.execute_script(BIDI)
        if found:
            moved[page] = found[:3]
    # the attach box's buttons, made by console.js from what the search finds
    b.get(site["base"] + "/admin/unanswered")
    item = wait_for(b, "article.item")
    item.find_element("css selector", "details.attach summary").click()
    item.find_element("css selector", 'input[name="q"]').send_keys("条目")
    wait_for(b, "article.item [data-results] button.choice")
    found = b.execute_script(BIDI)
    if found:
        moved["search buttons"] = found[:3]
    assert not moved


@pytest.mark.parametrize(
    "target",
    ["/admin/../healthz", "/admin/%2e%2e/healthz", "/admin/.%2E/livez", "/admin/./%2E./healthz"],
)
def test_login_next_with_dot_segments_goes_to_the_dashboard(client, target) -> None:  # type: ignore[no-untyped-def]
    """A browser resolves /admin/%2e%2e/healthz to /healthz: outside the console, which the
    README says login never sends the browser to."""
    resp = login(client, "console-admin-token", next_url=target)
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/admin/"


def test_login_next_with_dot_segments_stays_in_the_console_in_the_browser(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    b.get(site["base"] + "/admin/login?next=/admin/%2e%2e/healthz")
    wait_for(b, 'input[name="token"]').send_keys(ADMIN_TOKEN)
    find(b, 'form button[type="submit"]').click()
    deadline = time.monotonic() + 15
    while "/admin/login" in b.current_url and time.monotonic() < deadline:
        time.sleep(0.05)
    path = b.current_url.removeprefix(site["base"])
    assert path == "/admin/", path


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(admin_token="console-admin-token")


def test_the_attach_search_says_so_when_the_session_has_ended(site) -> None:  # type: ignore[no-untyped-def]
    """Before: the search got the login page (HTML) instead of JSON, failed to parse it and
    showed nothing at all, not even 「没有找到。」: the admin kept typing at a dead box."""
    from selenium.webdriver.support.ui import WebDriverWait

    from wxbot.console.models import ConsoleSession

    b = site["b"]
    engine = site["app"].extensions["wxbot.engine"]
    with engine.begin() as conn:
        unanswered.record_unanswered(conn, "发票怎么开", 0)
        writer.create_entry(conn, ["如何开具发票"], "在订单页。", now=0, source="api")
    log_in(site, start="/admin/unanswered")
    item = wait_for(b, "article.item")
    item.find_element("css selector", "details.attach summary").click()
    with engine.begin() as conn:  # logged out in another tab
        conn.execute(ConsoleSession.__table__.delete())
    item.find_element("css selector", 'input[name="q"]').send_keys("发票")
    shown = WebDriverWait(b, 10).until(
        lambda d: d.find_element("css selector", "article.item [data-results]").text
    )
    assert "登录已过期" in shown
