"""Take the README's screenshots of the console: a demo bot on a throw-away SQLite database
(the starter FAQ and flows, two weeks of simulated WeChat traffic through the signed callback,
the LLM fallback played by the local fake OpenAI-compatible server), served on 127.0.0.1 and
photographed page by page by headless Chromium.

    .venv/bin/python scripts/console_screenshots.py [--out docs]

Needs Debian's chromium and chromium-driver, fonts-noto-cjk for the Chinese text and
fonts-thai-tlwg for the Thai.
With Pillow installed the PNGs are quantised to 64 colours (a few times smaller).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import chromium  # noqa: E402
from tests.fakeapis import FakeApis  # noqa: E402
from tests.fakellm import FakeLlm  # noqa: E402
from tests.wechat_fakes import http_server  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.admin.ops import Admin  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402
from wxbot.qa import learning, store  # noqa: E402
from wxbot.qa.importer import import_files  # noqa: E402
from wxbot.wechat.simulator import WeChatSimulator  # noqa: E402

ADMIN_TOKEN = "demo-admin-token"
ROOT = Path(__file__).resolve().parent.parent
PAGES = [  # (file name, path, window height)
    ("console-login.png", "/admin/login", 520),
    ("console-dashboard.png", "/admin/", 1060),
    ("console-unanswered.png", "/admin/unanswered?sort=grouped", 900),
    ("console-knowledge.png", "/admin/knowledge", 900),
    ("console-entry.png", "/admin/knowledge/{entry}", 900),
    ("console-import.png", "/admin/import/{job}", 620),
    ("console-conversations.png", "/admin/conversations", 640),
    ("console-conversation.png", "/admin/conversations/o_demo_alice", 760),
    ("console-flows.png", "/admin/flows", 1300),
    ("console-synonyms.png", "/admin/synonyms", 640),
    ("console-llm.png", "/admin/llm", 760),
    ("console-learned.png", "/admin/learned", 420),
]
KNOWN = ["你是谁", "怎么修改绑定的手机号", "会员怎么退款", "营业时间", "怎么联系客服", "发票怎么开"]
UNKNOWN = [  # not in the starter FAQ; each pair says the same thing (grouped on 未答问题)
    "周末有人值班吗",
    "星期天有人吗",
    "周末上班吗",
    "周六开门吗",
    "快递能送到村里吗",
    "能送到乡下吗",
]
LLM_ANSWERS = {  # what the fake LLM says to them
    "周末有人值班吗": "周末 10:00-18:00 有客服值班，其他时间可以留言，我们会在工作日回复。",
    "星期天有人吗": "星期天 10:00-18:00 有客服在线。",
    "周末上班吗": "周末照常营业，客服在线时间 10:00-18:00。",
    "周六开门吗": "周六照常营业。",
    "快递能送到村里吗": "大部分乡镇和村都能送达，下单时填写详细地址即可；偏远地区可能多 1-2 天。",
    "能送到乡下吗": "能，偏远地区可能多 1-2 天。",
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(workdir: str, clock: Clock, apis: FakeApis, llm: FakeLlm | None):  # type: ignore[no-untyped-def]
    """The demo bot on its database; ``llm``: with the LLM fallback switched on."""
    os.environ["WXBOT_RECHARGE_WEBHOOK"] = f"{apis.url}/recharge"  # read by recharge_query.yaml
    with_llm = (
        {}
        if llm is None
        else {
            "llm_model": "deepseek-chat",
            "llm_url": llm.url,
            "llm_api_key": "sk-demo",
            "llm_price_input": 2.0,  # ¥ per million tokens, as DeepSeek listed them
            "llm_price_output": 8.0,
            "llm_rate": 0,
        }
    )
    return create_app(
        {
            "database_url": f"sqlite:///{workdir}/demo.sqlite3",
            "admin_token": ADMIN_TOKEN,
            "token": "demo-token",
            "appid": "wx00demo000000001",
            "clock": clock,
            "flows_dir": None,  # knowledge/flows of this checkout
            **with_llm,
            **apis.settings(),
        }
    )


def two_weeks_before_today(workdir: str, apis: FakeApis) -> Clock:
    """The starter FAQ, then 13 days of questions with no LLM (what it did not know stays
    unanswered: the trend chart); the clock is left at the start of today."""
    clock = Clock(time.time() - 14 * 86_400 + 3600)
    app = make_app(workdir, clock, apis, llm=None)
    engine = app.extensions["wxbot.engine"]
    upgrade(engine)
    import_files(engine, [str(ROOT / "knowledge" / "faq.txt")], now=clock())
    with http_server(app) as wechat:
        sim = WeChatSimulator("demo-token", "wx00demo000000001", None, "plain", clock=clock)
        rng = random.Random(7)
        for day in range(13):
            for i in range(rng.randint(8, 20)):
                pool = UNKNOWN if rng.random() < 0.25 + day / 60 else KNOWN
                sim.send(wechat, rng.choice(pool), openid=f"o_demo_{day}_{i % 5}")
                clock.now += 97
            clock.now += 86_400 - 97 * 20
    app.extensions["wxbot.bot"].close()  # its daily counts written
    return clock


def today(clock: Clock, wechat: str) -> None:  # type: ignore[no-untyped-def]
    """Today, with the LLM on: flows, a few questions, a user who asks in English."""
    sim = WeChatSimulator("demo-token", "wx00demo000000001", None, "plain", clock=clock)
    for i, text in enumerate(UNKNOWN + KNOWN):
        sim.send(wechat, text, openid=f"o_demo_today_{i % 4}")
        clock.now += 60
    flow_users = [  # the recharge flow: done, done after a wrong number, cancelled, left
        ["查充值", "202501150830123456"],
        ["充值没到账，订单号 202501150830654321"],
        ["查充值", "12345", "202501150830111111"],
        ["查充值", "取消"],
        ["充值查询", "不知道", "在哪看"],
        ["绑定手机", "13800138000", "取消"],
    ]
    for i, lines in enumerate(flow_users * 3):
        for text in lines:
            sim.send(wechat, text, openid=f"o_demo_flow_{i}")
            clock.now += 30
    for text in [
        "你好",
        "发票怎么开",
        "周末有人值班吗",
        "会员退款",
        "language en",
        "绑定手机",
    ]:
        sim.send(wechat, text, openid="o_demo_alice")
    sim.send(wechat, '<img src=x onerror="alert(1)"> 这也能问？', openid="o_demo_bob")
    sim.send(wechat, "绑定手机", openid="o_demo_carol")


def curate(app) -> None:  # type: ignore[no-untyped-def]
    """What admins did: a synonym group, a similar question, a language, learned wordings."""
    ops = Admin.of(app)
    ops.create_synonyms("收据 小票 凭条", source="console")
    _, kept = ops.llm_answers(0, 100)
    good = next(k for k in kept if k["question"] == "能送到乡下吗")
    ops.promote_llm_answer(good["id"], source="console", taught_by="demo")
    ops.add_questions(2, ["你都会些什么"])
    entry = ops.create_entry(
        ["How do I get an invoice?"], "Open Me > Orders > Invoice.", "console", "demo", "en"
    )
    with app.extensions["wxbot.engine"].begin() as conn:
        refund = store.find_entry(conn, "会员可以退款吗").id  # type: ignore[union-attr]
        for question, target in [
            ("退款要多久到账", refund),
            ("会员能退吗", refund),
            ("发票开错了", entry),
        ]:
            for openid in ("o_demo_pick_1", "o_demo_pick_2"):
                learning.record_pick(conn, openid, question, target, now=ops.now(), min_users=2)


def upload_demo_file(driver, base: str, workdir: str) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    path = Path(workdir) / "new-faq.csv"
    path.write_text(
        "question,answer\n会员积分怎么用,下单时可抵扣现金。\n积分过期吗,积分两年有效。\n"
        "这一行少了答案\n支持哪些快递,顺丰和京东。\n",
        encoding="utf-8",
    )
    driver.get(base + "/admin/import")
    driver.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, "#upload-form button.primary").click()
    for _ in range(200):
        if driver.find_elements(By.CSS_SELECTOR, "#r-rejected"):
            return driver.current_url.rsplit("/", 1)[1]
        time.sleep(0.1)
    raise RuntimeError("the dry run did not finish")


def shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=64).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    llm, apis = FakeLlm().start(), FakeApis().start()
    llm.answer = lambda messages: next(
        (a for q, a in LLM_ANSWERS.items() if messages[-1]["content"].endswith(q)),
        "这个我不太清楚。",
    )
    with tempfile.TemporaryDirectory() as workdir:
        clock = two_weeks_before_today(workdir, apis)
        app = make_app(workdir, clock, apis, llm)
        with http_server(app) as wechat, chromium() as driver:
            base = wechat.removesuffix("/wechat")
            today(clock, wechat)
            curate(app)
            driver.get(base + "/admin/login")
            from selenium.webdriver.common.by import By

            driver.find_element(By.NAME, "token").send_keys("wrong")
            driver.find_element(By.CSS_SELECTOR, "form button").click()
            shot(driver, out / PAGES[0][0], PAGES[0][2])
            driver.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
            driver.find_element(By.CSS_SELECTOR, "form button").click()
            job = upload_demo_file(driver, base, workdir)
            for name, path, height in PAGES[1:]:
                driver.get(base + path.format(entry=2, job=job))
                if name == "console-unanswered.png":  # open one group's panels
                    panels = driver.find_elements(By.CSS_SELECTOR, "article.group summary")
                    for summary in panels[:2]:
                        summary.click()
                shot(driver, out / name, height)
        app.extensions["wxbot.bot"].close()
    llm.stop()
    apis.stop()
    print(f"screenshots in {out}")


def shot(driver, path: Path, height: int) -> None:  # type: ignore[no-untyped-def]
    """The page down to its end, or to ``height`` pixels if it is longer."""
    driver.set_window_size(1200, 600)
    frame = driver.execute_script("return window.outerHeight - window.innerHeight")
    page = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1200, min(page, height) + frame)
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    shrink(path)
    print(f"{path.name}: {os.path.getsize(path) // 1024} KiB")


if __name__ == "__main__":
    main()
