"""The console in real headless Chromium, against the app served over HTTP, with the WeChat
side driven through the real signed callback (safe mode). Runs on SQLite and on MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser import chromium, require_browser
from tests.wechat_fakes import KEY, http_server
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.messages.replies import Text
from wxbot.qa import store, unanswered, writer
from wxbot.wechat.simulator import WeChatSimulator

ADMIN_TOKEN = "browser-admin-token-1234"
TOKEN, APPID = "browser-wechat-token", "wx00browser000001"
WAIT = 15  # seconds an element may take to appear (a shared 2-core machine)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    with chromium() as driver:
        yield driver


@pytest.fixture
def site(make_app, browser) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    app = make_app(admin_token=ADMIN_TOKEN, token=TOKEN, appid=APPID, encoding_aes_key=KEY)
    sim = WeChatSimulator(TOKEN, APPID, KEY, "safe", clock=app.extensions["wxbot.clock"])
    with http_server(app) as wechat:
        base = wechat.removesuffix("/wechat")
        # cookies belong to the host, not the port: the previous test's must go
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        yield {"app": app, "base": base, "sim": sim, "wechat": wechat, "b": browser}
    browser.get("about:blank")


def wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def wait_text(driver: Any, css: str, text: str) -> None:
    """Wait until an element with ``text`` shows (not just any element: the page before
    the click may still be there with an element of the same kind)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    located = ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    WebDriverWait(driver, WAIT).until(located)


def find(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def wait_until_at(driver: Any, path: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(lambda d: d.current_url.split("?")[0].endswith(path))


def log_in(site: dict[str, Any], token: str = ADMIN_TOKEN, start: str = "/admin/") -> None:
    """Log in through the form; with the right token, wait until the start page is shown."""
    b = site["b"]
    b.get(site["base"] + start)
    field = wait_for(b, 'input[name="token"]')
    field.send_keys(token)
    find(b, 'form button[type="submit"]').click()
    if token == ADMIN_TOKEN:
        wait_until_at(b, start.split("?")[0])


def ask(site: dict[str, Any], text: str, openid: str = "o_browser_user") -> str:
    reply = site["sim"].send(site["wechat"], text, openid=openid)
    assert isinstance(reply, Text)
    return reply.content


def test_login_fails_with_a_wrong_token_then_succeeds(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    log_in(site, token="not-the-token", start="/admin/knowledge")
    assert wait_for(b, "#login-error").text == "令牌不正确。"
    assert "/admin/login" in b.current_url and not b.get_cookie("wxbot_console")
    find(b, 'input[name="token"]').send_keys(ADMIN_TOKEN)
    find(b, 'form button[type="submit"]').click()
    wait_until_at(b, "/admin/knowledge")  # back where the admin was going
    assert find(b, "h1").text == "知识库"
    cookie = b.get_cookie("wxbot_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    find(b, "header .logout button").click()
    wait_until_at(b, "/admin/login")
    b.get(site["base"] + "/admin/")
    assert "/admin/login" in b.current_url  # logged out for real


def test_unanswered_question_taught_in_the_browser_then_answered_on_wechat(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    assert ask(site, "周末有人值班吗").startswith(DONT_KNOW)
    assert ask(site, "发票怎么开").startswith(DONT_KNOW)
    log_in(site, start="/admin/unanswered")
    item = wait_for(b, "article.item")
    questions = [e.text for e in find_all(b, "article.item .question")]
    assert set(questions) == {"周末有人值班吗", "发票怎么开"}
    article = next(a for a in find_all(b, "article.item") if "周末有人值班吗" in a.text)
    article.find_element("css selector", "details.teach summary").click()
    article.find_element("css selector", 'textarea[name="answer"]').send_keys(
        "周末 10:00-18:00 有同事值班。"
    )
    article.find_element("css selector", "details.teach button.primary").click()
    wait_text(b, ".flash.ok", "已教会")
    assert ask(site, "周末有人值班吗") == "周末 10:00-18:00 有同事值班。"

    # the other one becomes a similar question of an entry found by typing in the search box
    item = next(a for a in find_all(b, "article.item") if "发票怎么开" in a.text)
    with site["app"].extensions["wxbot.engine"].begin() as conn:
        invoice = writer.create_entry(
            conn, ["如何开具发票"], "在订单页点「申请发票」。", now=0, source="api"
        )
    item.find_element("css selector", "details.attach summary").click()
    item.find_element("css selector", 'input[name="q"]').send_keys("开具发票")
    button = wait_for(b, "article.item [data-results] button.choice")
    assert f"#{invoice}" in button.text
    button.click()
    wait_text(b, ".flash.ok", "已归入条目")
    assert ask(site, "发票怎么开") == "在订单页点「申请发票」。"
    with site["app"].extensions["wxbot.engine"].connect() as conn:
        assert store.get_entry(conn, invoice).questions == ["如何开具发票", "发票怎么开"]
        assert unanswered.count_unanswered(conn) == 0


def test_import_with_one_bad_row_reports_it_and_loses_nothing(site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    engine = site["app"].extensions["wxbot.engine"]
    with engine.begin() as conn:
        kept = writer.create_entry(conn, ["营业时间"], "每天 9:00-21:00。", now=0, source="api")
    upload = tmp_path / "faq.csv"
    upload.write_text(
        "question,answer\n"
        "退货地址在哪,寄到杭州市西湖区文三路 1 号。\n"
        "运费谁出,质量问题我们承担运费。\n"
        "这一行只有一列\n"
        "怎么改地址|地址填错了,订单发货前可以在订单页修改。\n",
        encoding="utf-8",
    )
    log_in(site, start="/admin/import")
    wait_for(b, 'input[type="file"]').send_keys(str(upload))
    find(b, "#upload-form button.primary").click()
    rejected = wait_for(b, "#r-rejected")  # the dry run finished: the page reloaded itself
    assert rejected.text == "1" and find(b, "#r-added").text == "3"
    rows = [r.text for r in find_all(b, "#bad-rows tbody tr")]
    assert rows == ["4 应为 2 列（问题,答案），实际 1 列。"]
    with engine.connect() as conn:
        assert store.counts(conn)["entries"] == 1  # checked, nothing written yet
    assert "跳过 1 个错误行，导入其余 3 行" in find(b, "#commit").text
    find(b, "#commit").click()
    wait_text(b, ".flash.ok", "导入完成")
    with engine.connect() as conn:
        assert store.counts(conn)["entries"] == 4
        assert store.get_entry(conn, kept).answer == "每天 9:00-21:00。"
        assert store.find_entry(conn, "地址填错了").answer == "订单发货前可以在订单页修改。"
    assert ask(site, "运费谁出") == "质量问题我们承担运费。"


XSS = ["<script>window.__xss = 1</script>", '"><img src=x onerror="window.__xss = 2">']
XSS_OPENID = 'o_"><img src=x onerror=window.__xss=3>'


def test_user_text_renders_as_text_everywhere(site) -> None:  # type: ignore[no-untyped-def]
    b = site["b"]
    for i, text in enumerate(XSS):
        ask(site, text, openid=f"o_xss_{i}")
    ask(site, "你好", openid=XSS_OPENID)  # WeChat's OpenIDs are tame; a forged one must be too
    engine = site["app"].extensions["wxbot.engine"]
    with engine.begin() as conn:
        entry = writer.create_entry(conn, [f"问题 {XSS[1]}"], f"答案 {XSS[0]}", now=0, source="api")
    log_in(site)
    pages = [
        "/admin/",
        "/admin/unanswered",
        "/admin/unanswered?sort=count",
        "/admin/knowledge",
        f"/admin/knowledge/{entry}",
        "/admin/conversations",
        "/admin/conversations/o_xss_1",
        "/admin/knowledge?q=" + XSS[1],
        "/admin/conversations/" + quote(XSS_OPENID, safe=""),
    ]
    for page in pages:
        b.get(site["base"] + page)
        wait_for(b, "main")
        state = b.execute_script(
            "return {xss: window.__xss, imgs: document.images.length,"
            " scripts: document.scripts.length, text: document.body.innerText,"
            " values: [...document.querySelectorAll('textarea, input')].map(e => e.value)}"
        )
        assert state["xss"] is None, page
        assert state["imgs"] == 0 and state["scripts"] == 1, page  # only console.js
        shown = state["text"] + "\n".join(state["values"])
        assert any(x in shown for x in [*XSS, XSS_OPENID]), page  # there, as text
    b.get(site["base"] + "/admin/conversations/o_xss_0")
    assert wait_for(b, ".bubble.user p").text == XSS[0]
    with engine.connect() as conn:
        assert unanswered.count_unanswered(conn) == 3
