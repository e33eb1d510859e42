"""The peer in the side-by-side benchmark: a WeRoBot 1.13.1 bot written the way its docs
show, for gunicorn (``gunicorn benchmarks.werobot_app:app``).

Safe mode (AES) with the same credentials as the wxbot run, WeRoBot's MySQL session storage
on the same MariaDB (a PyMySQL connection per worker, autocommit so sessions persist), and
the same starter FAQ as a dict of exact questions. Every message reads and writes the
user's session (a message count), as WeRoBot does for each message with sessions on. It
neither locks the user nor deduplicates WeChat's retries: that is the difference the
benchmark prices.

Configured by environment: WEROBOT_MYSQL (host:port/db), BENCH_TOKEN, BENCH_APPID,
BENCH_AES_KEY, BENCH_FAQ (path of knowledge/faq.txt).
"""

from __future__ import annotations

import os

import pymysql
import werobot
from werobot.session.mysqlstorage import MySQLStorage

DONT_KNOW = "这个问题我还不会回答。"


def _faq(path: str) -> dict[str, str]:
    """question -> answer, from the documented Q:/A: import format."""
    faq: dict[str, str] = {}
    questions: list[str] = []
    answer: list[str] = []

    def flush() -> None:
        for q in questions:
            faq[q] = "\n".join(answer).strip()

    for line in open(path, encoding="utf-8").read().splitlines():  # noqa: SIM115
        if line.startswith("Q:"):
            if answer:
                flush()
                questions, answer = [], []
            questions.append(line[2:].strip())
        elif line.startswith("A:"):
            answer.append(line[2:].strip())
        elif answer and line.strip():
            answer.append(line.strip())
    flush()
    return faq


def _storage() -> MySQLStorage:
    host_port, db = os.environ["WEROBOT_MYSQL"].split("/", 1)
    host, port = host_port.split(":")
    conn = pymysql.connect(
        host=host, port=int(port), user="root", db=db, charset="utf8mb4", autocommit=True
    )
    return MySQLStorage(conn)


FAQ = _faq(os.environ["BENCH_FAQ"])
robot = werobot.WeRoBot(
    token=os.environ["BENCH_TOKEN"],
    app_id=os.environ["BENCH_APPID"],
    encoding_aes_key=os.environ["BENCH_AES_KEY"],
    session_storage=_storage(),
)


@robot.text
def answer(message, session):  # type: ignore[no-untyped-def]
    session["messages"] = session.get("messages", 0) + 1
    return FAQ.get(message.content.strip(), DONT_KNOW)


app = robot.wsgi
