"""Wrong admin tokens per client address: one budget for the login form and every bearer request."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from flask import current_app, request
from sqlalchemy import Double, Engine, Integer, String, case, delete, or_, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.db import is_mysql, transaction, with_retries
from wxbot.models import Base

MAX_FAILURES = 5  # wrong tokens per client address...
FAILURE_WINDOW = 15 * 60  # ...within this many seconds; then refused until the window ends

# How a guess is decided, and the worst case under concurrency.
#
# The login form counts every attempt before it checks the token (count_attempt), and a
# success forgets the count: two writes per login, fine for a person. The API is called by
# scripts, so a right bearer token only *reads* the count (bearer_wait), under the lock
# that counting takes: on SQLite every transaction starts with BEGIN IMMEDIATE, the database's
# write lock; on MySQL a share lock on the client's row, which waits for a count not yet
# committed, even one that is inserting the row. A wrong token takes the same read first
# (a locked-out client is answered from it, so its answers take the same time whichever
# token it sends); then it is counted, and its answer decided, in one transaction
# (count_attempt), as for the login.
#
# Both kinds send, as their first statement straight after the (in-memory) comparison, one
# that queues on the client's count, so the answers are those of some serial order of the
# requests, an order that does not depend on which guess is right. Worst case, per address and window: at most MAX_FAILURES wrong tokens are
# answered 403 (all others 429), and a right token is accepted only if fewer than
# MAX_FAILURES failures precede it in that order, which is the budget of guessing one at a
# time. The race left: a right token read before concurrent wrong ones reach the database is
# accepted, the wrong ones being ordered after it. That is no extra guess: an attacker cannot
# send the right one first without knowing which it is. Cost: a right token, one read and no
# write; a wrong one, that read and one write; once the client is locked out, the read alone
# whichever token it sends, so a flood of guesses then writes nothing and is not told apart
# from a right token by its timing. A right token does not forget the count (that would be a
# write): failures expire with their window, or with a login through the form.


class ConsoleLoginFailure(Base):
    """Wrong admin tokens per client (client_key: an IPv4 address or an IPv6 /64) in the
    current window (every process sees them).
    The name is historical: the login form, the API and the console's bearer access share it."""

    __tablename__ = "console_login_failures"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[float] = mapped_column(Double)


failures = ConsoleLoginFailure.__table__


def _engine() -> Engine:
    return current_app.extensions["wxbot.engine"]


def _now() -> float:
    return current_app.extensions["wxbot.clock"]()


def client_address() -> str:
    """The address failures are counted under (the connecting peer: behind a reverse proxy,
    that is the proxy unless it is made to pass the client's address on)."""
    return (request.remote_addr or "unknown")[:64]


IPV6_PREFIX = 64  # bits of an IPv6 address that name one client (see client_key)


def client_key() -> str:
    """What failures are counted under: the client's IPv4 address, or the /64 network of its
    IPv6 address. One IPv6 host is handed a whole /64 (2^64 addresses it may pick from at
    will): counted per address, each guess could come from a fresh one, so the lockout would
    never bite and the table would keep a row per guess for the window."""
    address = client_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:203.0.113.9 is the IPv4 client 203.0.113.9
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return address


def _wait(row: Any, now: float, earlier: int) -> int:
    """Seconds to refuse a request for when ``earlier`` failures already fill the window of
    ``row`` (a stale window counts for nothing); 0 = let it through."""
    if row is None or row.window_start <= now - FAILURE_WINDOW or earlier < MAX_FAILURES:
        return 0
    return max(1, math.ceil(row.window_start + FAILURE_WINDOW - now))


def count_attempt() -> int:
    """Count an attempt in the client's window *before* its answer is given; returns the
    seconds it must wait (0 = answer it). Counting and reading the count in one transaction
    means attempts sent at once cannot all pass a check that none of them had been counted
    in yet. The login form forgets the count after a success (forget_failures)."""
    now = _now()
    client = client_key()
    stale = failures.c.window_start <= now - FAILURE_WINDOW
    values = {"client": client, "failures": 1, "window_start": now}
    full = failures.c.failures > MAX_FAILURES  # locked out: counting more changes nothing
    # failures first: MySQL evaluates the assignments in order, and it must see the old window
    updates = [
        ("failures", case((stale, 1), (full, failures.c.failures), else_=failures.c.failures + 1)),
        ("window_start", case((stale, now), else_=failures.c.window_start)),
    ]

    def run() -> int:
        with transaction(_engine()) as conn:
            # the count first: it is where guesses queue, the same place as a right token's read
            if is_mysql(conn):  # an update to the same values writes nothing
                stmt = mysql_insert(failures).values(values).on_duplicate_key_update(updates)
            else:
                stmt = sqlite_insert(failures).values(values)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["client"], set_=dict(updates), where=or_(stale, ~full)
                )
            conn.execute(stmt)
            row = conn.execute(select(failures).where(failures.c.client == client)).one()
            # windows that ended are forgotten (the table stays as small as the attack is wide)
            conn.execute(delete(failures).where(stale, failures.c.client != client))
        return _wait(row, now, row.failures - 1)

    return with_retries(run)


def forget_failures() -> None:
    """The client's count is gone (after a login with the right token)."""

    def run() -> None:
        with transaction(_engine()) as conn:
            conn.execute(delete(failures).where(failures.c.client == client_key()))

    with_retries(run)


def bearer_wait(right: bool) -> int:
    """For a request with a bearer token (``right``: it is the admin token): the seconds it
    must wait (answer 429), or 0 (answer as the token deserves). A wrong token is counted;
    see the comment at the top of the module for why a right one is only read.

    Both first read the count the same way, and a client locked out is answered from that
    read alone, whatever its token: counting a wrong guess took two statements more, so a
    locked-out client could tell the right token by how fast its 429 came back."""
    wait = _locked_for()
    if wait or right:
        return wait
    return count_attempt()


def _locked_for() -> int:
    now = _now()
    mine = select(failures).where(failures.c.client == client_key())
    mine = mine.with_for_update(read=True)  # MySQL: waits for uncommitted counts (SQLite: no-op)

    def run() -> int:
        with transaction(_engine()) as conn:
            row = conn.execute(mine).first()
        return _wait(row, now, row.failures if row else 0)

    return with_retries(run)
