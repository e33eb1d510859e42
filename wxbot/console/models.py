"""Tables of the web console (migration 0009_console): sessions, imports; the failed-token
counts (console_login_failures) live with the throttle that the admin API shares."""

from __future__ import annotations

from sqlalchemy import Boolean, Double, Integer, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

# imported so that importing this module registers every console_* table on the shared Base
from wxbot.admin.throttle import ConsoleLoginFailure  # noqa: F401
from wxbot.models import Base

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # fits MariaDB's default max_allowed_packet (16 MiB)
Blob = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


class ConsoleSession(Base):
    """A logged-in browser. The cookie holds a random id; only its sha256 is stored, so a
    leaked table logs nobody in. Logging out deletes the row: the cookie is dead at once."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))  # which admin token it logged in with
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    last_seen: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class ConsoleImport(Base):
    """An uploaded knowledge file: checked (a dry run), then imported, with progress that
    any process can read (the page polls it), so a large file does not leave the admin blind."""

    __tablename__ = "console_imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    fmt: Mapped[str] = mapped_column(String(8))
    data: Mapped[bytes] = mapped_column(Blob)  # emptied once imported
    status: Mapped[str] = mapped_column(String(16))  # checking|checked|importing|done|failed
    skip_bad: Mapped[bool] = mapped_column(Boolean, default=False)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[str] = mapped_column(Text, default="{}")  # JSON: counts and bad rows
    created_at: Mapped[float] = mapped_column(Double, index=True)
    updated_at: Mapped[float] = mapped_column(Double)
