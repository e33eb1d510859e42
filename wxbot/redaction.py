"""Secrets and personal data kept out of log records and printed errors.

Operators ship logs to third-party services and paste them into support tickets, and China's
PIPL counts a phone number as personal information. The code avoids logging such things in
the first place (an SMS code, a user's message, a URL's query string); this module is the
safety net behind it, installed by ``create_app`` for every log record of the process
(wxbot's, urllib3's, Flask's, gunicorn's) before any handler sees it:

- SQLAlchemy statement errors render without their SQL parameters (a user's message, a phone
  number, the access_token being stored), in the message and in a logged traceback;
- values of secret-looking query parameters (``access_token=``, ``key=``, ``sign=``, ...),
  the password of ``scheme://user:password@host`` and ``Bearer`` tokens become ``***``;
  urllib3's lines (our outbound calls) lose every query value (a location, a song search);
- mainland mobile numbers are masked as ``138****5678``.

OpenIDs stay: they are pseudonymous and what an operator needs to follow a user's report.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import StatementError

from wxbot import errors
from wxbot.i18n.numerals import DIGIT_WORDS, spoken_digits

MASK = "***"

# name=value pairs whose name says secret: access_token, secret, key, api_key, sign, sig,
# signature, msg_signature, password, passwd, pwd, auth, credential, ...
_SECRET_PARAM = re.compile(
    r"(?i)\b([\w.-]*?(?:token|secret|key|sig|sign|signature|password|passwd|pwd|auth|"
    r"credential)s?)=([^&\s'\"()<>,;]+)"
)
# the password of a URL's userinfo: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^/\s@'\"]+@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
# every query value of an absolute URL, or of a path after "url: " / "url='" (requests' and
# urllib3's error texts: "Max retries exceeded with url: /send?access_token=...")
_URL_QUERY = re.compile(r"(?i)(https?://[^\s'\"?<>]*|\burl[:=]\s*'?/[^\s'\"?<>]*)\?([^\s'\"<>)]*)")
# any query string of a request line or path (urllib3's "POST /sms?key=... HTTP/1.1")
_ANY_QUERY = re.compile(r"(/[^\s'\"?<>]*)\?([^\s'\"<>)]*)")
_QUERY_VALUE = re.compile(r"([^&=;]+=)[^&;]*")
_MASKED_VALUE = r"\g<1>" + MASK
# mainland China mobile numbers, with or without +86 and separators: 13800138000,
# +86 138-0013-8000, 138 0013 8000 (not inside a longer run of letters and digits)
_PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[-\s]?)?(1[3-9]\d)[-\s]?(\d{4})[-\s]?(\d{4})(?![0-9A-Za-z])"
)


def mask_phone(phone: str) -> str:
    """``13800138000`` -> ``138****8000`` (short strings are masked whole)."""
    digits = phone.strip()
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 11 else MASK


def _query_values(match: re.Match[str]) -> str:
    return match.group(1) + "?" + _QUERY_VALUE.sub(_MASKED_VALUE, match.group(2))


def redact(text: str, all_queries: bool = False) -> str:
    """``text`` without secrets nor phone numbers (see the module's docstring).
    ``all_queries``: every query string's values go, not only those of absolute URLs."""
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
    text = (_ANY_QUERY if all_queries else _URL_QUERY).sub(_query_values, text)
    text = _SECRET_PARAM.sub(rf"\g<1>={MASK}", text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    return _PHONE.sub(r"\1****\3", text)


# --- personal identifiers in text the bot keeps ------------------------------------------------
#
# Words users typed that the bot keeps for others to read (an unanswered question admins see
# for WXBOT_UNANSWERED_DAYS, a wording did-you-mean picks vote for) must not keep what
# identifies someone: mainland mobile numbers however written or said, ID-card numbers, bank
# cards, order and tracking numbers (any run of 11 digits or more: shorter ones are hotlines,
# amounts, years), e-mail addresses. Not for log records: a MsgId is 19 or 20 digits.
# (starting only where a run of such characters starts: from every position of a long run
# the search took quadratic time, 2.6 s for a pasted 60k-character text)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_CARD_GROUPS = re.compile(r"\d{4}(?:[-\s]\d{4}){3,4}(?:[-\s]\d{1,3})?")  # 6222 0212 3456 7890
_MOBILE_WRITTEN = re.compile(r"(?<!\d)(?:\+?86[-\s]?)?1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}(?!\d)")
_LONG_NUMBER = re.compile(r"\d{17}[Xx]|\d{11,}")
_IDENTIFIERS = (_EMAIL, _CARD_GROUPS, _LONG_NUMBER, _MOBILE_WRITTEN)


# A character that may be (part of) a digit once read; every identifier but an e-mail address
# has 11 or more. Counting them first spares the history's every message the full reading.
_DIGITISH = re.compile("[\\d" + "".join(sorted(DIGIT_WORDS)) + "]")


def mask_identifiers(text: str) -> str:
    """``text`` with each personal identifier replaced by ``***`` (see above); ``text`` itself
    when it holds none. Read with full-width digits folded and digits said in Chinese (a
    voice message's recognition: 「幺三八零零幺三八零零零」) as digits."""
    if "@" not in text and "＠" not in text and len(_DIGITISH.findall(text)) < 11:
        return text
    read = spoken_digits(unicodedata.normalize("NFKC", text))
    masked = read
    for pattern in _IDENTIFIERS:
        masked = pattern.sub(MASK, masked)
    return text if masked == read else masked


def hide_sql_parameters(exc: BaseException | None) -> None:
    """Make SQLAlchemy errors in ``exc``'s chain render without their SQL parameters
    (what ``create_engine(hide_parameters=True)`` does for the errors of one engine)."""
    if exc is None:
        return
    for one in errors.chain(exc):
        if isinstance(one, StatementError):
            one.hide_parameters = True


def describe(exc: BaseException) -> str:
    """An exception for a log line or a printed error: its type and its message, without SQL
    parameters, secrets or phone numbers."""
    hide_sql_parameters(exc)
    try:
        message = " ".join(str(exc).split())
    except Exception:  # noqa: BLE001 - a broken __str__ must not cost the log line
        message = ""
    name = type(exc).__name__
    return redact(f"{name}: {message}" if message else name)


def display_url(url: str | URL) -> str:
    """A database (or any SQLAlchemy) URL for printing: no password, and no secret-looking
    query values (PyMySQL also takes ``?password=``)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
        shown = parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can read: the text, redacted
        shown = str(url)
    return redact(shown)


def shown_url(url: str) -> str:
    """An outbound URL (a webhook's) for a message: without its userinfo and its query
    string, either of which often holds a token."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    base, query, _ = f"{authority.rpartition('@')[2]}{slash}{path}".partition("?")
    return f"{scheme}{sep}{base}" + ("?…" if query else "")


# --- the log records --------------------------------------------------------------------------

_formatter = logging.Formatter()
_SQLALCHEMY_DATA = frozenset({"_repr_params", "_repr_row"})  # what its engine logger prints


def redact_record(record: logging.LogRecord) -> None:
    """Redact one record in place: its message (args merged in), traceback and stack."""
    if record.name.startswith("sqlalchemy.engine") and isinstance(record.args, tuple):
        # SQLAlchemy's echo (or its logger at INFO/DEBUG): statements stay, the parameters
        # and result rows (users' messages, numbers, the stored access_token) go
        record.args = tuple(
            "[hidden]" if type(a).__name__ in _SQLALCHEMY_DATA else a for a in record.args
        )
    for arg in _args(record):
        if isinstance(arg, BaseException):
            hide_sql_parameters(arg)
    exc = record.exc_info[1] if record.exc_info else None
    hide_sql_parameters(exc)
    all_queries = record.name.startswith("urllib3")  # our outbound calls: no query values
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is the handler's problem
        return
    clean = redact(message, all_queries)
    if clean != message:
        record.msg, record.args = clean, None
    if exc is not None and not record.exc_text:  # rendered now, as handlers would, redacted
        record.exc_text = redact(_formatter.formatException(record.exc_info))  # type: ignore[arg-type]
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _args(record: logging.LogRecord) -> list[Any]:
    args = record.args
    if isinstance(args, dict):
        return list(args.values())
    return list(args) if isinstance(args, tuple) else []


class RedactingFilter(logging.Filter):
    """The same redaction as a filter, for a handler an operator configures themselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Redact every log record of the process as it is made (idempotent): a record factory
    reaches every logger and every handler, including those configured after this call."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "wxbot_redacts", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        with contextlib.suppress(Exception):  # logging must go on, whatever the record
            redact_record(record)
        return record

    make_record.wxbot_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
