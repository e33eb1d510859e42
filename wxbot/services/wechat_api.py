"""WeChat's server API: one access_token shared by every container, and customer-service push.

WeChat allows 2000 token fetches a day and a fetch can invalidate the token other processes
hold, so the token lives in the database (table ``wechat_tokens``) and only one process
refreshes it at a time: the refresher takes a lock, looks again (someone may have refreshed
while it waited), and only then calls ``/cgi-bin/stable_token``. Holding the lock across that
one HTTP call is deliberate: it is what makes waiters reuse the new token instead of fetching
their own, and it happens once in ~2 hours. The lock is one that blocks nobody else:

- MySQL: the token's row (``SELECT ... FOR UPDATE``), which only other refreshers wait for;
- SQLite: a lock file next to the database (``flock``), *not* a transaction: our SQLite
  transactions start with ``BEGIN IMMEDIATE``, the database-wide write lock, and holding it
  across the HTTP call (up to its budget) stalled every user's message meanwhile. The token
  is fetched outside any transaction and stored in a short one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from sqlalchemy import Engine, insert, select, update

from wxbot.db import transaction
from wxbot.messages.replies import Image, Music, News, Reply, Text, Video, Voice
from wxbot.services.budget import Budget
from wxbot.services.http import (
    ServiceError,
    make_session,
    redact_url_secrets_in_logs,
    request_json,
    timeouts,
)
from wxbot.services.models import WeChatToken

try:
    import fcntl
except ImportError:  # not POSIX: one process per SQLite database, the in-process lock is enough
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SERVICE = "wechat"
REFRESH_MARGIN = 300.0  # renew 5 minutes early: WeChat's own overlap window
TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid / malformed / expired token
_TOKENS = WeChatToken.__table__
LOCK_POLL = 0.02  # seconds between tries of a SQLite refresher's lock file


class WeChatApi:
    def __init__(
        self,
        appid: str,
        appsecret: str,
        api_url: str,
        engine: Engine,
        http_timeout: Budget | float = 12.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self.appsecret = appsecret
        self.api_url = api_url.rstrip("/")
        self.engine = engine
        self.clock = clock
        self.timeout = timeouts(http_timeout)
        self.session: requests.Session = make_session(retry_reads=False)
        redact_url_secrets_in_logs()  # the token travels in the query string
        self._token = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()  # one refresher per process before the DB lock

    # --- access_token ----------------------------------------------------------------------

    def access_token(self, invalid: str | None = None) -> str:
        """A valid token. ``invalid``: a token WeChat just rejected, which must not be reused.

        Raises ServiceError when WeChat cannot be reached or refuses our credentials.
        """
        with self._lock:
            if self._usable(self._token, self._expires_at, invalid):
                return self._token
            row = self._stored()
            if row is not None and self._usable(row.access_token, row.expires_at, invalid):
                self._token, self._expires_at = row.access_token, row.expires_at
                return self._token
            return self._refresh(invalid)

    def _usable(self, token: str, expires_at: float, invalid: str | None) -> bool:
        return bool(token) and token != invalid and expires_at - REFRESH_MARGIN > self.clock()

    def _refresh(self, invalid: str | None) -> str:
        if self.engine.dialect.name == "sqlite":
            return self._refresh_sqlite(invalid)
        # The row must exist before it can be locked; a separate short transaction that
        # tolerates a duplicate keeps two first-time refreshers from deadlocking on MySQL.
        with transaction(self.engine) as conn:
            conn.execute(
                insert(_TOKENS)
                .prefix_with("IGNORE", dialect="mysql")
                .prefix_with("OR IGNORE", dialect="sqlite")
                .values(appid=self.appid, access_token="", expires_at=0.0, updated_at=0.0)
            )
        with transaction(self.engine) as conn:
            row = conn.execute(
                select(_TOKENS.c.access_token, _TOKENS.c.expires_at)
                .where(_TOKENS.c.appid == self.appid)
                .with_for_update()
            ).one()
            if self._usable(row.access_token, row.expires_at, invalid):
                token, expires_at = row.access_token, row.expires_at  # refreshed meanwhile
            else:
                token, expires_in = self._fetch_token(force=invalid is not None)
                expires_at = self.clock() + expires_in
                conn.execute(
                    update(_TOKENS)
                    .where(_TOKENS.c.appid == self.appid)
                    .values(
                        access_token=token,
                        expires_at=expires_at,
                        updated_at=self.clock(),
                        refreshes=_TOKENS.c.refreshes + 1,
                    )
                )
        self._token, self._expires_at = token, expires_at
        return token

    def _refresh_sqlite(self, invalid: str | None) -> str:
        """The token fetched outside any transaction (see the module's docstring), with a
        lock file making other processes' refreshers wait for it and then reuse it."""
        with self._sqlite_refresh_lock():
            row = self._stored()
            if row is not None and self._usable(row.access_token, row.expires_at, invalid):
                token, expires_at = row.access_token, row.expires_at  # refreshed meanwhile
            else:
                seen = row.expires_at if row is not None else 0.0
                token, expires_in = self._fetch_token(force=invalid is not None)
                expires_at = self.clock() + expires_in
                with transaction(self.engine) as conn:  # the write lock for milliseconds
                    conn.execute(
                        insert(_TOKENS)
                        .prefix_with("OR IGNORE", dialect="sqlite")
                        .values(appid=self.appid, access_token="", expires_at=0.0, updated_at=0.0)
                    )
                    # Compare-and-set: a token stored meanwhile (by a refresher the lock file
                    # did not stop) is newer than ours; it is kept and used.
                    stored = conn.execute(
                        update(_TOKENS)
                        .where(_TOKENS.c.appid == self.appid, _TOKENS.c.expires_at <= seen)
                        .values(
                            access_token=token,
                            expires_at=expires_at,
                            updated_at=self.clock(),
                            refreshes=_TOKENS.c.refreshes + 1,
                        )
                    ).rowcount
                if not stored:
                    row = self._stored()
                    if row is not None and self._usable(row.access_token, row.expires_at, None):
                        token, expires_at = row.access_token, row.expires_at
        self._token, self._expires_at = token, expires_at
        return token

    def _stored(self) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(_TOKENS.c.access_token, _TOKENS.c.expires_at).where(
                    _TOKENS.c.appid == self.appid
                )
            ).first()

    @contextmanager
    def _sqlite_refresh_lock(self) -> Iterator[None]:
        """One refresher per SQLite database across processes (and across WeChatApi objects
        of one process: flock locks belong to the open file). Waits at most as long as the
        holder's fetch may take; an in-memory database has no file and one process."""
        database = self.engine.url.database
        if fcntl is None or not database or database == ":memory:":
            yield
            return
        connect, read = self.timeout
        give_up = time.monotonic() + 2 * connect + read + 1.0
        fd = os.open(os.path.realpath(database) + ".token-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= give_up:
                        raise ServiceError(
                            SERVICE, "another process is refreshing the token"
                        ) from None
                    time.sleep(LOCK_POLL)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _fetch_token(self, force: bool) -> tuple[str, float]:
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.appsecret,
            # stable_token hands every caller the same token; force only when WeChat said
            # the current one is invalid (limited to 20 a day by WeChat).
            "force_refresh": force,
        }
        data = self._post_json(f"{self.api_url}/cgi-bin/stable_token", body)
        token = data.get("access_token")
        if not token:
            raise ServiceError(
                SERVICE, f"stable_token refused: {data.get('errcode')} {data.get('errmsg')}"
            )
        return str(token), float(data.get("expires_in") or 7200)

    # --- customer-service messages ---------------------------------------------------------

    def send(self, openid: str, reply: Reply) -> bool:
        """Push ``reply`` to ``openid``; True when WeChat accepted it. Never raises."""
        payload = custom_message(openid, reply)
        if payload is None:
            return False
        invalid: str | None = None
        try:
            for _ in range(2):  # second round only after WeChat rejected the token
                token = self.access_token(invalid)
                data = self._post_json(
                    f"{self.api_url}/cgi-bin/message/custom/send",
                    payload,
                    params={"access_token": token},
                )
                code = int(data.get("errcode") or 0)
                if code == 0:
                    return True
                if code in TOKEN_ERRORS and invalid is None:
                    invalid = token
                    continue
                log.warning("custom/send to %s refused: %s %s", openid, code, data.get("errmsg"))
                return False
        except ServiceError as exc:
            log.warning("custom/send to %s failed: %s", openid, exc)
        except Exception:  # a push is best effort; the engine falls back to the next message
            log.exception("custom/send to %s crashed", openid)
        return False

    def _post_json(
        self, url: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        # ensure_ascii=False: WeChat shows \\uXXXX escapes literally instead of decoding them.
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        data = request_json(
            self.session,
            SERVICE,
            "POST",
            url,
            self.timeout,
            data=raw,
            params=params,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if not isinstance(data, dict):
            raise ServiceError(SERVICE, "answer is not an object")
        return data


def custom_message(openid: str, reply: Reply) -> dict[str, Any] | None:
    """The customer-service message body for a reply, or None when it cannot be pushed."""
    base: dict[str, Any] = {"touser": openid}
    if isinstance(reply, Text):
        return {**base, "msgtype": "text", "text": {"content": reply.content}}
    if isinstance(reply, Music):
        if not reply.thumb_media_id:
            # WeChat requires a thumbnail for pushed music; a link still plays it.
            text = f"🎵 {reply.title}\n{reply.description}\n{reply.music_url}"
            return {**base, "msgtype": "text", "text": {"content": text}}
        return {
            **base,
            "msgtype": "music",
            "music": {
                "title": reply.title,
                "description": reply.description,
                "musicurl": reply.music_url,
                "hqmusicurl": reply.hq_music_url or reply.music_url,
                "thumb_media_id": reply.thumb_media_id,
            },
        }
    if isinstance(reply, News):
        articles = [
            {"title": a.title, "description": a.description, "url": a.url, "picurl": a.image}
            for a in reply.articles[:1]  # WeChat now delivers only one article per push
        ]
        return {**base, "msgtype": "news", "news": {"articles": articles}} if articles else None
    if isinstance(reply, Image):
        return {**base, "msgtype": "image", "image": {"media_id": reply.media_id}}
    if isinstance(reply, Voice):
        return {**base, "msgtype": "voice", "voice": {"media_id": reply.media_id}}
    if isinstance(reply, Video):
        return {
            **base,
            "msgtype": "video",
            "video": {
                "media_id": reply.media_id,
                "title": reply.title,
                "description": reply.description,
            },
        }
    return None  # Silent, TransferToHuman: nothing to show
