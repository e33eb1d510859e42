"""Run real `wxbot serve` processes for cross-process tests, and talk to them like WeChat does
(plaintext mode: signed query string, XML body)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

import requests

TOKEN = "multiprocess-token"
APPID = "wx1234567890multi"
ACCOUNT = "gh_multiprocess"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers(list):  # type: ignore[type-arg]
    """The /wechat URLs of the started processes; ``procs`` are the processes."""

    def __init__(self, urls: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
        super().__init__(urls)
        self.procs = procs

    def workers(self, n: int) -> list[int]:
        """PIDs of process ``n``'s gunicorn workers."""
        pid = self.procs[n].pid
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@contextmanager
def serve(
    database_url: str,
    count: int = 2,
    log_dir: Path | None = None,
    args: tuple[str, ...] = (),
    **env: str,
) -> Iterator[Servers]:
    """Start ``count`` `wxbot serve` processes on one database; yields their /wechat URLs.
    ``log_dir``: each process's log (stderr) goes to ``serve-N.log`` there (see read_logs).
    ``args``: more options of `wxbot serve` (e.g. ``("--workers", "2")``)."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    urls: list[str] = []
    environment = {
        **os.environ,
        "WXBOT_DATABASE_URL": database_url,
        "WXBOT_TOKEN": TOKEN,
        "WXBOT_APPID": APPID,
        **env,
    }
    environment.pop("WXBOT_ENCODING_AES_KEY", None)
    try:
        for n in range(count):
            port = free_port()
            log = open(log_dir / f"serve-{n}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
            if log_dir:
                logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "from wxbot.cli import main; main()",
                        "serve",
                        "--port",
                        str(port),
                        *args,
                    ],
                    env=environment,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"wxbot serve exited with {proc.returncode}")
                try:
                    if requests.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:  # not listening yet, or still starting
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not become healthy")
                time.sleep(0.1)
        yield Servers([url + "/wechat" for url in urls], procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def read_logs(log_dir: Path) -> str:
    """Everything the processes started by ``serve(log_dir=...)`` logged."""
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("serve-*.log")))


def signed_params() -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce}


def text_body(openid: str, content: str, msg_id: int, create_time: int | None = None) -> bytes:
    """A plaintext-mode text message as WeChat POSTs it (a retry keeps its CreateTime)."""
    created = int(time.time()) if create_time is None else create_time
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{escape(content)}</Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def reply_content(text: str) -> str:
    """The Content of a reply body ('' for success/empty)."""
    if "<Content>" not in text:
        return "" if text in ("", "success") else text
    import xmltodict

    return xmltodict.parse(text)["xml"]["Content"]


def post_text(session: requests.Session, url: str, openid: str, content: str, msg_id: int) -> str:
    """POST a text message; returns the reply's Content ('' for success/empty)."""
    body = text_body(openid, content, msg_id)
    response = session.post(url, params=signed_params(), data=body, timeout=30)
    response.raise_for_status()
    return reply_content(response.text)
