"""What the user finally receives: pages of long answers, late results, the history window.

These work on a ContextRow's engine-private slots (``_pages``, ``_outbox``, ``_notice``), which
handlers never see and which survive a handler replacing the slots wholesale.
"""

from __future__ import annotations

from typing import Any

from wxbot.dialog import words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.paging import footed, page_bodies
from wxbot.i18n import DEFAULT_LANGUAGE, N_, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, reply_from_dict
from wxbot.redaction import MASK, mask_identifiers

PAGES = "_pages"  # the unread pages of a long answer: [body, index, total] each
OUTBOX = "_outbox"  # late results (Reply.to_dict) to deliver with the next message
NOTICE = "_notice"  # a notice (words.TIMED_OUT) for the next reply that can show it
WORKING = "_working"  # slow work under way: {dedup key: when phase one committed it}
# 「清除记忆」 was just asked to be confirmed: set by that reply only, so it lapses with the
# next message whatever it is (wxbot/dialog/forgetting.py)
FORGET_ASKED = "_forget"
PRIVATE_SLOTS = (PAGES, OUTBOX, NOTICE, WORKING, FORGET_ASKED)
# The line between late results and the reply to the message just sent.
LATE_SEPARATOR = N_("——")


def public_slots(slots: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in slots.items() if k not in PRIVATE_SLOTS}


def queue_late(ctx: ContextRow, reply: Reply) -> None:
    """Keep a result that could not be delivered in time for the user's next message."""
    ctx.slots.setdefault(OUTBOX, []).append(reply.to_dict())


def unqueue_late(ctx: ContextRow, queued: dict[str, Any]) -> bool:
    """Take back a result ``queue_late`` kept (``queued``: its Reply.to_dict), to deliver it
    another way; False when it is no longer there (the next message carried it)."""
    outbox = list(ctx.slots.get(OUTBOX) or [])
    if queued not in outbox:
        return False
    outbox.remove(queued)
    if outbox:
        ctx.slots[OUTBOX] = outbox
    else:
        ctx.slots.pop(OUTBOX, None)
    return True


def compose(
    ctx: ContextRow,
    reply: Reply,
    new_slots: dict,
    max_bytes: int,
    notice: str = "",  # type: ignore[type-arg]
    pages: list[str] | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> Reply:
    """The reply to send, with late results in front and long text paged; sets ctx.slots.

    ``pages`` given: the reply is already one page of an earlier answer (继续).
    """
    outbox = [reply_from_dict(d) for d in ctx.slots.get(OUTBOX) or []]
    if pages is None and isinstance(reply, Silent):
        # Nothing new was said (an event answered with silence): the unread pages of the
        # last answer stay for 「继续」.
        pages = list(ctx.slots.get(PAGES) or [])
    if isinstance(reply, Text):
        text = f"{notice}\n{reply.content}" if notice else reply.content
        if pages is None:
            late_texts = [r.content for r in outbox if isinstance(r, Text)]
            if late_texts:
                late = translate(words.LATE_RESULT, language)
                separator = translate(LATE_SEPARATOR, language)
                text = "\n\n".join([late, *late_texts, separator, text])
            outbox = [r for r in outbox if not isinstance(r, Text)]
            text, pages = _first_page(text, max_bytes, language)
        reply = Text(text)
    elif outbox and isinstance(reply, Silent):  # nothing new to say: a late result instead
        reply, outbox = outbox[0], outbox[1:]
    # A new music/news reply cannot carry late results: it goes now, they wait for a text.
    slots = dict(new_slots)
    if pages:
        slots[PAGES] = pages
    if outbox:
        slots[OUTBOX] = [r.to_dict() for r in outbox]
    ctx.slots = slots
    return reply


def page_overtaken(ctx: ContextRow, reply: Reply, max_bytes: int, language: str) -> Reply:
    """A slow answer delivered after another message moved the dialogue on: its first page
    now, the rest for 「继续」 (they replace the newer answer's unread pages: 继续 follows the
    answer the user received last). Its state and other slots are the newer message's."""
    if not isinstance(reply, Text):
        return reply
    first, rest = _first_page(reply.content, max_bytes, language)
    if rest:
        ctx.slots[PAGES] = rest
    return Text(first)


def _first_page(text: str, max_bytes: int, language: str) -> tuple[str, list[list[Any]]]:
    """The first page of ``text`` (footed) and the unread ones ([body, index, total]): they
    are footed when read, in the language of that moment."""
    bodies = page_bodies(text, max_bytes)
    total = len(bodies)
    if total == 1:
        return text, []
    unread = [[body, index, total] for index, body in enumerate(bodies[1:], 2)]
    return footed(bodies[0], 1, total, language), unread


def read_page(page: Any, language: str) -> str:
    """An unread page as sent now. A plain string is a page stored footed by an earlier
    release (a context lives minutes): sent as it is."""
    if isinstance(page, str):
        return page
    body, index, total = page
    return footed(body, index, total, language)


# What one side of an exchange keeps in the history, at most: a reply page (2048 bytes) is
# whole; a pasted 60 kB text is not kept whole, or ten of them would make every message of
# that user write (and the LLM's prompt carry) 600 kB of history.
REMEMBERED_CHARS = 2000


def remember(
    ctx: ContextRow, msg: Inbound, reply: Reply, rounds: int, secret: bool = False
) -> None:
    """Append one exchange to the history, keeping the last ``rounds`` exchanges.

    The history is kept for WXBOT_MEMORY_DAYS, shown to admins and sent with every LLM
    prompt to the model's provider, so it keeps no secret (``secret``: the message was an SMS
    code, kept as ***) and no identifier either side typed: phone, ID-card, bank-card and order
    numbers and e-mail addresses are masked (wxbot.redaction.mask_identifiers); the flow that
    needed one holds it in its own slots."""
    if msg.is_event and isinstance(reply, Silent):
        return  # an event nobody answered is not part of the conversation
    said = (
        MASK if secret else mask_identifiers(msg.text) if msg.text else f"[{msg.event or msg.kind}]"
    )
    if isinstance(reply, Text):
        answered = reply.content
    else:
        note = getattr(reply, "note", "")
        answered = f"[{reply.kind}] {note}" if note else f"[{reply.kind}]"
    exchange = [["user", _clipped(said)], ["bot", _clipped(mask_identifiers(answered))]]
    ctx.history = [*ctx.history, *exchange][-rounds * 2 :]


def _clipped(text: str) -> str:
    return text if len(text) <= REMEMBERED_CHARS else f"{text[:REMEMBERED_CHARS]}…"


# --- slow work under way: a worker killed meanwhile must not leave the user waiting -----------


def working(ctx: ContextRow) -> dict[str, float]:
    """The user's slow work under way (read before anything rewrites the slots)."""
    found = ctx.slots.get(WORKING)
    return dict(found) if isinstance(found, dict) else {}


def without_lost(under_way: dict[str, float], now: float, after: float) -> tuple[dict, bool]:  # type: ignore[type-arg]
    """The work still under way, and whether any was started more than ``after`` seconds ago:
    work that never came back (its worker was killed, its resume failed), whose user was
    perhaps told 「还在处理中」 and would otherwise wait for nothing."""
    kept = {key: started for key, started in under_way.items() if now - started < after}
    return kept, len(kept) < len(under_way)


def set_working(ctx: ContextRow, under_way: dict[str, float]) -> None:
    if under_way:
        ctx.slots[WORKING] = under_way
    else:
        ctx.slots.pop(WORKING, None)
