"""The dialogue table, assembled from the handler modules and validated at start-up.

Each module in ``wxbot.dialog.handlers`` listed in HANDLER_MODULES may define:

- ``STATES: dict[str, Handler]`` — the waiting states it owns and their handlers;
- ``ROUTERS: list[Router]`` — functions that may claim a message in WAIT_QUERY (keywords
  such as 天气 / 点歌 / 学习), tried in module order before the knowledge base answers;
- ``forget_user(conn, openid)`` — delete what it stored about a user (on unsubscribe);
- ``PROMPTS: dict[str, Prompt]`` — what a waiting state asks, to repeat it after the engine
  answered something else in between (「语言 en」 mid-flow);
- ``on_exit(turn, reason)`` — told when a global interrupt (``cancelled``, ``handed_off``)
  takes the user out of one of its states (statistics);
- ``COMMANDS: list[Command]`` — tests of a message that plainly starts this module's task
  (「天气 北京」, 「绑定手机」: the command word first). In another module's waiting state such a
  message leaves that state and is handled as in WAIT_QUERY, instead of being read as the
  city, the number or the code asked for (a user who changed their mind met 「没有找到
  「绑定手机」」 and, after three tries, a human). A module's test declines in its own states,
  whose handlers read their own commands;
- ``TAKES_ANY_TEXT: set[str]`` — its waiting states whose answer may be any text (a question
  being taught, a song title): typed commands do not interrupt those (a menu click does: a
  menu key is never such an answer);
- ``CLAIMS: list[Claim]`` — tests ``(text, kb) -> bool`` of whether its router claims
  ``text`` typed in WAIT_QUERY, decided in memory from the text alone (no turn, no context,
  no database): whether a parametric QR code's scene means a task (「天气」, 「查充值」), which
  the engine must know before any transaction (``Dialogue.understands``). A router without
  one never gets a scene: the scan stays silent;
- ``TAKES_LOCATION: set[str]`` — its waiting states that a shared location answers (the
  weather's city). Every other waiting state answers a message without words (a picture, a
  sticker, a voice message WeChat could not recognise, a location, a file) by asking again,
  without counting a wrong answer (``Dialogue.dispatch``).

Objects built at start-up may contribute the same attributes (``extra`` of build_table):
the business flows loaded from YAML files (wxbot.flows) are one.

WAIT_QUERY itself is served by ``handlers.query.answer`` after every router declined.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Forgetter, Handler, Router, Turn
from wxbot.models import STATE_LEN

HANDLER_MODULES = ("learn", "weather", "music")

Prompt = Callable[[Turn], "str | None"]
ExitHook = Callable[[Turn, str], None]
Command = Callable[[Turn], bool]
Claim = Callable[[str, Any], bool]  # (text, knowledge base) -> a router claims the text


class DialogueTableError(RuntimeError):
    pass


@dataclass
class DialogueTable:
    handlers: dict[str, Handler] = field(default_factory=dict)
    routers: list[Router] = field(default_factory=list)
    forgetters: list[Forgetter] = field(default_factory=list)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    exit_hooks: list[ExitHook] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    takes_any_text: set[str] = field(default_factory=set)
    takes_location: set[str] = field(default_factory=set)

    def is_known(self, state: str) -> bool:
        return state in self.handlers

    def check_next_state(self, state: str) -> None:
        if state not in self.handlers:
            raise DialogueTableError(f"a handler returned the unknown state {state!r}")

    def prompt(self, turn: Turn) -> str | None:
        """What the user's waiting state asks (in their language), if it says."""
        prompt = self.prompts.get(turn.state)
        return prompt(turn) if prompt is not None else None

    def exited(self, turn: Turn, reason: str) -> None:
        for hook in self.exit_hooks:
            hook(turn, reason)

    def starts_another_task(self, turn: Turn, menu: bool = False) -> bool:
        """A message in a waiting state that plainly starts a task of its own (see COMMANDS).
        ``menu``: a menu click's key, which starts a task even where any text is an answer."""
        if turn.state == WAIT_QUERY or turn.msg.is_event:
            return False
        if turn.state in self.takes_any_text and not menu:
            return False
        return any(command(turn) for command in self.commands)


def build_table(
    module_names: tuple[str, ...] = HANDLER_MODULES, extra: Sequence[Any] = ()
) -> DialogueTable:
    from wxbot.dialog.handlers import query

    table = DialogueTable(handlers={WAIT_QUERY: query.answer})
    modules: list[Any] = [
        importlib.import_module(f"wxbot.dialog.handlers.{name}") for name in module_names
    ]
    modules.extend(extra)
    for module in (*modules, query):
        for state, handler in getattr(module, "STATES", {}).items():
            if len(state) > STATE_LEN:
                raise DialogueTableError(f"state name {state!r} is longer than {STATE_LEN}")
            if state in table.handlers and table.handlers[state] is not handler:
                raise DialogueTableError(f"state {state!r} is defined twice")
            if not callable(handler):
                raise DialogueTableError(f"the handler of {state!r} is not callable")
            table.handlers[state] = handler
        table.routers.extend(getattr(module, "ROUTERS", ()))
        if hasattr(module, "forget_user"):
            table.forgetters.append(module.forget_user)
        table.prompts.update(getattr(module, "PROMPTS", {}))
        if hasattr(module, "on_exit"):
            table.exit_hooks.append(module.on_exit)
        table.commands.extend(getattr(module, "COMMANDS", ()))
        table.claims.extend(getattr(module, "CLAIMS", ()))
        table.takes_any_text.update(getattr(module, "TAKES_ANY_TEXT", ()))
        table.takes_location.update(getattr(module, "TAKES_LOCATION", ()))
    _check_declared_states(table, (*modules, query))
    return table


def _check_declared_states(table: DialogueTable, modules: tuple[Any, ...]) -> None:
    """Every state constant a module declares (``WAIT_X = "WAIT_X"``) must have a handler:
    a state a handler can move to but nobody serves would strand users in it."""
    for module in modules:
        if not hasattr(module, "__dict__"):
            continue
        for name, value in vars(module).items():
            if name.startswith("WAIT_") and value == name and not table.is_known(value):
                raise DialogueTableError(
                    f"{getattr(module, '__name__', module)} declares state {value!r} but no module handles it"
                )
