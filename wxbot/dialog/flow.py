"""The vocabulary of the dialogue table: what a handler sees (Turn) and returns (Outcome).

Handlers are plain functions ``Turn -> Outcome``. They may read and write the database through
``turn.db`` (a SQLAlchemy Core connection inside the per-message transaction: never commit it)
and call outbound services through ``turn.deps``; everything they decide about the dialogue is
in the returned Outcome, which the engine applies and saves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wxbot.i18n import DEFAULT_LANGUAGE, Message, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from wxbot.config import Settings

WAIT_QUERY = "WAIT_QUERY"
WINDOW_COLUMN = "memory_rounds"  # the user's own history window, read with the context lock


@dataclass
class Deps:
    """What handlers may use besides the database: settings, the knowledge base, services."""

    settings: Settings
    kb: Any = None  # wxbot.qa.KnowledgeBase
    services: Any = None  # wxbot.services.Services
    # wxbot.llm.MemoryStore: window_column() (labelled WINDOW_COLUMN) rides along the context
    # lock, initial_history(openid) fills a new context, forget_user(conn, openid),
    # clear_history(conn, openid, now) empties both copies of the history (「清除记忆」)
    memory: Any = None
    # Asked when the knowledge base has no confident answer (wxbot.llm's LLM fallback): an
    # Outcome, or None to let the knowledge base say it does not know.
    fallback: Callable[[Turn], Outcome | None] | None = None


@dataclass
class Turn:
    msg: Inbound
    state: str
    slots: dict[str, Any]
    attempts: int  # failed attempts at the current step
    rounds: int  # messages spent inside the current unfinished flow
    now: float  # epoch seconds from the engine's clock (controllable in tests)
    db: Connection
    deps: Deps
    can_teach: bool = False
    # Writes to run in their own short transaction after this message commits: statistics
    # on rows many users share (unanswered questions), which must not stay locked for the
    # rest of a user's transaction. Lost if the process dies in between; never for user data.
    after_commit: list[Callable[[Connection], None]] = field(default_factory=list)
    language: str = DEFAULT_LANGUAGE  # the user's reply language (wxbot.dialog.language)

    @property
    def text(self) -> str:
        return self.msg.text.strip()

    def t(self, message: Message, **params: Any) -> str:
        """``message`` (a text marked with wxbot.i18n.N_) in the user's language."""
        return translate(message, self.language, **params)


@dataclass(frozen=True)
class Limits:
    """Failed attempts at one step / messages inside one unfinished flow before the engine
    hands off to a human. Handlers that escalate by themselves (business flows) declare
    their own; the others get WXBOT_MAX_ATTEMPTS / WXBOT_MAX_ROUNDS."""

    attempts: int
    rounds: int


@dataclass
class Outcome:
    """A handler's decision. ``slots`` replaces the stored slots wholesale (None = empty)."""

    reply: Reply
    state: str = WAIT_QUERY
    slots: dict[str, Any] | None = None
    failed: bool = False  # the input did not satisfy this step: counts toward the attempt limit
    deferred: Deferred | None = None  # slow work to finish outside the transaction
    counts: bool = True  # False: this message does not count as a round of the flow
    limits: Limits | None = None  # None: the settings' limits apply to the next state
    stat: str = ""  # what the message counts as in the daily statistics (answered, unknown...)
    secret: bool = False  # the message was a secret (an SMS code): the history keeps no copy


Handler = Callable[[Turn], Outcome]
# A router looks at a message in WAIT_QUERY and either claims it (returns an Outcome, usually
# entering a waiting state) or returns None so the next router (finally the knowledge base) sees it.
Router = Callable[[Turn], "Outcome | None"]
# Deletes everything a module stored about a user (on unsubscribe).
Forgetter = Callable[["Connection", str], None]


@dataclass
class Deferred:
    """Slow outbound work (an HTTP call) that must not hold the user's lock or WeChat's 5 s.

    The engine saves the Outcome's state/slots and a *pending* dedup record, commits, then runs
    ``work()`` in a thread pool (no database access there). When it finishes, ``resume(turn,
    result)`` runs under the user's lock in a new transaction; ``result`` is whatever ``work``
    returned, or the exception it raised. The resumed Outcome is applied only if no other
    message of the user changed the context meanwhile; its reply is always recorded under the
    message's dedup key (and delivered late if WeChat's retries ran out: see engine.py).
    """

    work: Callable[[], Any]
    resume: Callable[[Turn, Any], Outcome]
