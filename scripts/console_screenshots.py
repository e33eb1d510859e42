"""Take the README's screenshots of the console: a demo bot on a throw-away SQLite database
(the starter FAQ, two weeks of simulated WeChat traffic through the signed callback), served
on 127.0.0.1 and photographed page by page by headless Chromium.

    .venv/bin/python scripts/console_screenshots.py [--out docs]

Needs Debian's chromium and chromium-driver, and fonts-noto-cjk for the Chinese text.
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
from tests.wechat_fakes import http_server  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import upgrade  # noqa: E402
from wxbot.qa.importer import import_files  # noqa: E402
from wxbot.wechat.simulator import WeChatSimulator  # noqa: E402

ADMIN_TOKEN = "demo-admin-token"
ROOT = Path(__file__).resolve().parent.parent
PAGES = [  # (file name, path, window height)
    ("console-login.png", "/admin/login", 520),
    ("console-dashboard.png", "/admin/", 900),
    ("console-unanswered.png", "/admin/unanswered", 900),
    ("console-knowledge.png", "/admin/knowledge", 900),
    ("console-entry.png", "/admin/knowledge/{entry}", 640),
    ("console-import.png", "/admin/import/{job}", 620),
    ("console-conversations.png", "/admin/conversations", 560),
    ("console-conversation.png", "/admin/conversations/o_demo_alice", 720),
    ("console-flows.png", "/admin/flows", 360),
    ("console-synonyms.png", "/admin/synonyms", 360),
]
KNOWN = ["你是谁", "怎么修改绑定的手机号", "会员怎么退款", "营业时间", "怎么联系客服", "发票怎么开"]
UNKNOWN = ["周末有人值班吗", "可以开专票吗", "积分什么时候过期", "支持花呗分期吗", "怎么注销账号"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def build_demo(workdir: str):  # type: ignore[no-untyped-def]
    clock = Clock(time.time() - 14 * 86_400 + 3600)
    app = create_app(
        {
            "database_url": f"sqlite:///{workdir}/demo.sqlite3",
            "admin_token": ADMIN_TOKEN,
            "token": "demo-token",
            "appid": "wx00demo000000001",
            "clock": clock,
        }
    )
    engine = app.extensions["wxbot.engine"]
    upgrade(engine)
    import_files(engine, [str(ROOT / "knowledge" / "faq.txt")], now=clock())
    return app, clock


def simulate_traffic(app, clock: Clock, wechat: str) -> None:  # type: ignore[no-untyped-def]
    sim = WeChatSimulator("demo-token", "wx00demo000000001", None, "plain", clock=clock)
    rng = random.Random(7)
    for day in range(14):
        for i in range(rng.randint(8, 20)):
            pool = UNKNOWN if rng.random() < 0.25 + day / 60 else KNOWN
            sim.send(wechat, rng.choice(pool), openid=f"o_demo_{day}_{i % 5}")
            clock.now += 97
        clock.now += 86_400 - 97 * 20
    for text in ["你好", "发票怎么开", "周末有人值班吗", "会员退款", "1", "绑定手机"]:
        sim.send(wechat, text, openid="o_demo_alice")
    sim.send(wechat, '<img src=x onerror="alert(1)"> 这也能问？', openid="o_demo_bob")
    sim.send(wechat, "绑定手机", openid="o_demo_carol")


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
    with tempfile.TemporaryDirectory() as workdir:
        app, clock = build_demo(workdir)
        with http_server(app) as wechat, chromium() as driver:
            base = wechat.removesuffix("/wechat")
            simulate_traffic(app, clock, wechat)
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
                if name == "console-unanswered.png":  # open one item's panels
                    panels = driver.find_elements(By.CSS_SELECTOR, "article.item summary")
                    for summary in panels[:2]:
                        summary.click()
                shot(driver, out / name, height)
        app.extensions["wxbot.bot"].close()
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
