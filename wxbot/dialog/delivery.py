"""What the user finally receives: pages of long answers, late results, the history window.

These work on a ContextRow's engine-private slots (``_pages``, ``_outbox``, ``_notice``), which
handlers never see and which survive a handler replacing the slots wholesale.
"""

from __future__ import annotations

from wxbot.dialog import words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.paging import paginate
from wxbot.i18n import DEFAULT_LANGUAGE, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, reply_from_dict

PAGES = "_pages"  # the unread pages of a long answer
OUTBOX = "_outbox"  # late results (Reply.to_dict) to deliver with the next message
NOTICE = "_notice"  # a notice (words.TIMED_OUT) for the next reply that can show it
PRIVATE_SLOTS = (PAGES, OUTBOX, NOTICE)


def public_slots(slots: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in slots.items() if k not in PRIVATE_SLOTS}


def queue_late(ctx: ContextRow, reply: Reply) -> None:
    """Keep a result that could not be delivered in time for the user's next message."""
    ctx.slots.setdefault(OUTBOX, []).append(reply.to_dict())


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
        # Nothing new was said (a menu link opened, a LOCATION report): the unread pages
        # of the last answer stay for 「继续」.
        pages = list(ctx.slots.get(PAGES) or [])
    if isinstance(reply, Text):
        text = f"{notice}\n{reply.content}" if notice else reply.content
        if pages is None:
            late_texts = [r.content for r in outbox if isinstance(r, Text)]
            if late_texts:
                late = translate(words.LATE_RESULT, language)
                text = "\n\n".join([late, *late_texts, "——", text])
            outbox = [r for r in outbox if not isinstance(r, Text)]
            text, *pages = paginate(text, max_bytes, language)
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


def remember(ctx: ContextRow, msg: Inbound, reply: Reply, rounds: int) -> None:
    """Append one exchange to the history, keeping the last ``rounds`` exchanges."""
    if msg.is_event and isinstance(reply, Silent):
        return  # an event nobody answered (LOCATION reports...) is not part of the conversation
    said = msg.text or f"[{msg.event or msg.kind}]"
    if isinstance(reply, Text):
        answered = reply.content
    else:
        note = getattr(reply, "note", "")
        answered = f"[{reply.kind}] {note}" if note else f"[{reply.kind}]"
    ctx.history = [*ctx.history, ["user", said], ["bot", answered]][-rounds * 2 :]
