"""WeChat's access_token, one for every container: WeChat allows 2000 token fetches a day
and a fetch can invalidate the token other processes hold, so the token lives in the
database (table ``wechat_tokens``) and only one process refreshes it at a time: the
refresher takes a lock, looks again (someone may have refreshed while it waited), and only
then calls ``/cgi-bin/stable_token``. Holding the lock across that one HTTP call is
deliberate: it is what makes waiters reuse the new token instead of fetching their own, and
it happens once in ~2 hours. The lock is one that blocks nobody else:

- MySQL: the token's row (``SELECT ... FOR UPDATE``), which only other refreshers wait for;
- SQLite: a lock file next to the database (``flock``), *not* a transaction: our SQLite
  transactions start with ``BEGIN IMMEDIATE``, the database-wide write lock, and holding it
  across the HTTP call (up to its budget) stalled every user's message meanwhile. The token
  is fetched outside any transaction and stored in a short one.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, insert, select, update

from wxbot.database_clock import synced_now
from wxbot.db import transaction
from wxbot.services.http import Deadline, ServiceError
from wxbot.services.models import WeChatToken
from wxbot.services.wechat_errors import SERVICE, ApiGate, WeChatError, errcode

try:
    import fcntl
except ImportError:  # not POSIX: one process per SQLite database, the in-process lock is enough
    fcntl = None  # type: ignore[assignment]

REFRESH_MARGIN = 300.0  # renew 5 minutes early: WeChat's own overlap window
# stable_token's force_refresh invalidates the token every container holds and WeChat allows
# few a day: a token rejected within this long of its fetch is not forced again (WeChat
# would refuse, or the next push would reject that one too: something else is wrong).
FORCE_MIN_INTERVAL = 30.0
_TOKENS = WeChatToken.__table__
LOCK_POLL = 0.02  # seconds between tries of a SQLite refresher's lock file
DEFAULT_LIFETIME = 7200  # seconds: what WeChat says, when an answer leaves it out
MAX_LIFETIME = 86_400.0  # longer is nonsense (WeChat's tokens live 2 hours)
# WeChat's tokens are ~150 characters of [A-Za-z0-9_-]; the column holds 512; it travels
# in a query string
_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{1,512}")

# POST a JSON body to a WeChat API URL within a deadline; the answer's JSON object
Post = Callable[[str, dict[str, Any], Deadline], dict[str, Any]]


class TokenStore:
    """This process's view of the shared token: cached in memory, read from the database,
    refreshed under the lock when it is about to expire or WeChat rejected it."""

    def __init__(
        self,
        appid: str,
        appsecret: str,
        api_url: str,
        engine: Engine,
        post: Post,
        gate: ApiGate,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self.appsecret = appsecret
        self.api_url = api_url
        self.engine = engine
        self._post = post
        self.gate = gate
        self.clock = clock
        self._token = ""
        self._expires_at = 0.0
        self._forced_at = float("-inf")  # self.clock() of this process's last forced refresh
        self._lock = threading.Lock()  # one refresher per process before the DB lock

    def get(self, invalid: str | None, deadline: Deadline) -> str:
        """A valid token. ``invalid``: a token WeChat just rejected, which must not be reused.

        Raises ServiceError when WeChat cannot be reached or refuses our credentials, or the
        deadline passes first, e.g. waiting for another thread's refresh of a token WeChat is
        slow to hand out.
        """
        if self._usable(self._token, self._expires_at, invalid):  # the common case: no lock
            return self._token
        if not self._lock.acquire(timeout=deadline.timeout()[1]):
            self.gate.check()  # that refresh failed and paused pushes: nothing more to say
            raise ServiceError(SERVICE, "timed out waiting for another thread's token refresh")
        try:
            if self._usable(self._token, self._expires_at, invalid):
                return self._token
            row = self._stored()
            if row is not None and self._usable(row.access_token, row.expires_at, invalid):
                self._token, self._expires_at = row.access_token, row.expires_at
                return self._token
            # A refresh that just failed paused the API: its waiters fail now, not in turn.
            self.gate.check()
            return self._refresh(invalid, deadline)
        finally:
            self._lock.release()

    def _usable(self, token: str, expires_at: float, invalid: str | None) -> bool:
        return bool(token) and token != invalid and expires_at - REFRESH_MARGIN > self.clock()

    def _force(self, row: Any, invalid: str | None) -> bool:
        """Whether to ask for a forced refresh: only for a token WeChat rejected, and only once
        per FORCE_MIN_INTERVAL from this process (ServiceError: this push gives up). Without
        that, a WeChat that keeps rejecting tokens had every push force a new one (20 a day
        are allowed, each voiding every container's token)."""
        if invalid is None:
            return False
        if row is not None and row.access_token != invalid:
            # The rejected token is an older one and the stored one is about to expire: a
            # plain fetch renews it without voiding the token of every other container.
            return False
        since = self.clock() - self._forced_at
        if 0 <= since < FORCE_MIN_INTERVAL:
            raise ServiceError(
                SERVICE,
                f"WeChat rejected the access_token this process forced {since:.0f} s ago; "
                "not forcing another yet",
            )
        self._forced_at = self.clock()
        return True

    def _refresh(self, invalid: str | None, deadline: Deadline) -> str:
        if self.engine.dialect.name == "sqlite":
            return self._refresh_sqlite(invalid, deadline)
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
            synced_now(self.clock, conn)  # expires_at is compared by every container's clock
            row = conn.execute(
                select(_TOKENS.c.access_token, _TOKENS.c.expires_at, _TOKENS.c.updated_at)
                .where(_TOKENS.c.appid == self.appid)
                .with_for_update()
            ).one()
            if self._usable(row.access_token, row.expires_at, invalid):
                token, expires_at = row.access_token, row.expires_at  # refreshed meanwhile
            else:
                token, expires_in = self._fetch_token(self._force(row, invalid), deadline)
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

    def _refresh_sqlite(self, invalid: str | None, deadline: Deadline) -> str:
        """The token fetched outside any transaction (see the module's docstring), with a
        lock file making other processes' refreshers wait for it and then reuse it."""
        with self._sqlite_refresh_lock(deadline):
            row = self._stored()
            if row is not None and self._usable(row.access_token, row.expires_at, invalid):
                token, expires_at = row.access_token, row.expires_at  # refreshed meanwhile
            else:
                seen = row.expires_at if row is not None else 0.0
                token, expires_in = self._fetch_token(self._force(row, invalid), deadline)
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
            synced_now(self.clock, conn)  # expires_at is compared by every container's clock
            return conn.execute(
                select(_TOKENS.c.access_token, _TOKENS.c.expires_at, _TOKENS.c.updated_at).where(
                    _TOKENS.c.appid == self.appid
                )
            ).first()

    @contextmanager
    def _sqlite_refresh_lock(self, deadline: Deadline) -> Iterator[None]:
        """One refresher per SQLite database across processes (and across TokenStore objects
        of one process: flock locks belong to the open file). Waits at most what is left of
        the deadline; an in-memory database has no file and one process."""
        database = self.engine.url.database
        if fcntl is None or not database or database == ":memory:":
            yield
            return
        give_up = time.monotonic() + deadline.timeout()[1]
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

    def _fetch_token(self, force: bool, deadline: Deadline) -> tuple[str, float]:
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.appsecret,
            # stable_token hands every caller the same token; force only when WeChat said
            # the current one is invalid (limited to 20 a day by WeChat).
            "force_refresh": force,
        }
        data = self._post(f"{self.api_url}/cgi-bin/stable_token", body, deadline)
        token = data.get("access_token")
        if not token:
            code = errcode(data)
            if code == 0:
                raise ServiceError(SERVICE, "stable_token answered without an access_token")
            raise WeChatError(code, str(data.get("errmsg")), "stable_token", token_endpoint=True)
        # Checked before it is stored: a value the column cannot hold (too long, Infinity on
        # MySQL) or a lifetime that is no number would fail every push with a traceback, and
        # fetch again each time (WeChat allows 2000 fetches a day).
        expires_in = data.get("expires_in") or DEFAULT_LIFETIME
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise ServiceError(SERVICE, "stable_token answered with a malformed access_token")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or not 0 < expires_in <= MAX_LIFETIME
        ):
            raise ServiceError(SERVICE, "stable_token answered with a malformed expires_in")
        return token, float(expires_in)
