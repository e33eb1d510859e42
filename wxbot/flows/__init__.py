"""Business flows loaded from YAML files (knowledge/flows/): slots filled from free text,
guidance that escalates with failed attempts, webhooks; they plug into the dialogue table.

    flows = load_flows(directory)          # FlowError lists every file:line problem
    table = build_table(extra=[FlowRunner(flows.flows)])
"""

from __future__ import annotations

from pathlib import Path

from wxbot.flows import models  # noqa: F401  (registers flow_stats on the shared Base)
from wxbot.flows.loader import FlowError, Loaded, load_file
from wxbot.flows.triggers import phrase_key

DEFAULT_DIR = "knowledge/flows"
_RESEND = ["重发", "resend"]  # 「重发」 at an sms_code step; kept out of triggers all the same

__all__ = ["DEFAULT_DIR", "FlowError", "Loaded", "default_dir", "load_flows"]


def default_dir() -> Path:
    """knowledge/flows under the current directory, else the one of this source checkout."""
    here = Path(DEFAULT_DIR)
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent.parent / DEFAULT_DIR


def load_flows(directory: str | Path | None = None) -> Loaded:
    """Every ``*.yaml`` / ``*.yml`` file of the directory, validated together (a trigger two
    flows claim, a state two steps use). A missing default directory means no flows; a
    missing directory that was asked for is an error."""
    path = Path(directory) if directory else default_dir()
    if not path.is_dir():
        if directory:
            raise FlowError([f"{path}: the flows directory does not exist (WXBOT_FLOWS_DIR)"])
        return Loaded()
    loaded = Loaded()
    problems: list[str] = []
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for file in files:
        flow, errors, warnings = load_file(file)
        problems.extend(errors)
        loaded.warnings.extend(warnings)
        if flow is not None:
            loaded.flows.append(flow)
    problems.extend(_conflicts(loaded))
    loaded.warnings.extend(_too_common(loaded))
    if problems:
        raise FlowError(problems)
    return loaded


def _engine_states() -> set[str]:
    """The waiting states of the bot's own tasks (weather, music, teaching, WAIT_QUERY)."""
    from wxbot.dialog.states import build_table

    return set(build_table().handlers)


def _reserved() -> set[str]:
    """The whole messages the engine answers itself in every reply language (取消, 退出,
    キャンセル, 转人工, agent, 继续, 次へ, 学习, 调教, 清除记忆, my memory …): a trigger equal to one never starts
    its flow. Taken from the engine's own word lists, so a word added there is refused here."""
    from wxbot.dialog import words
    from wxbot.dialog.handlers.learn import TEACH_WORDS
    from wxbot.dialog.language import COMMAND_WORDS
    from wxbot.dialog.paging import MORE_WORDS

    every = (
        *(words.CANCEL_WORDS, words.HUMAN_WORDS, words.FORGET_WORDS, words.MEMORY_WORDS),
        *(MORE_WORDS, TEACH_WORDS, COMMAND_WORDS),
    )
    return {phrase_key(w) for group in (*every, _RESEND) for w in group}


def _answered_by_the_bot(phrase: str) -> str | None:
    """The built-in command that takes ``phrase`` before any flow's router sees it."""
    from wxbot.dialog import language
    from wxbot.dialog.handlers import music, weather

    if language.parse_command(phrase) is not None:
        return "a language command (语言 en / language en)"
    if weather.parse_request(phrase) is not None:
        return "a weather request (天气 …)"
    if music.parse_request(phrase) is not None:
        return "a music request (点歌 …)"
    return None


def _too_common(loaded: Loaded) -> list[str]:
    """Triggers found in almost any message: one character (「查」 takes 「帮我查一下快递」) or a
    function word (「the」, 「是」, 「ang」). A warning: the flow works, just far too often."""
    from wxbot.i18n.detect import ENGLISH_WORDS, TAGALOG_WORDS
    from wxbot.qa.text import STOPWORDS

    common = STOPWORDS | ENGLISH_WORDS | TAGALOG_WORDS
    warnings = []
    for flow in loaded.flows:
        for phrase in flow.triggers:
            key = phrase_key(phrase)
            if len(key) == 1 or key in common:
                warnings.append(
                    f"{flow.path}:{flow.lines.get(phrase, flow.line)}: the trigger {phrase!r} "
                    "is in almost every message, each of which would start the flow; use a "
                    "longer phrase (or a keyword: the message must start with it)"
                )
    return warnings


def _conflicts(loaded: Loaded) -> list[str]:
    problems = []
    names: dict[str, str] = {}
    states: dict[str, str] = {}
    phrases: dict[str, tuple[str, str]] = {}
    reserved = _reserved() if loaded.flows else set()
    engine = _engine_states() if loaded.flows else set()
    for flow in loaded.flows:
        where = f"{flow.path}:{flow.line}"
        if flow.name in names:
            problems.append(f"{where}: the flow name {flow.name!r} is used by {names[flow.name]}")
        names.setdefault(flow.name, where)
        for step in flow.steps:
            at = f"{flow.path}:{step.line}"
            if step.state in states or step.state in engine or step.state.startswith("WAIT_QUERY"):
                other = states.get(step.state, "the bot itself")
                problems.append(f"{at}: the state {step.state!r} is already used by {other}")
            states.setdefault(step.state, at)
        for phrase in (*flow.triggers, *flow.keywords):
            at = f"{flow.path}:{flow.lines.get(phrase, flow.line)}"
            key = phrase_key(phrase)
            command = _answered_by_the_bot(phrase)
            if not key:  # it would be found in every message
                problems.append(
                    f"{at}: the trigger {phrase!r} has no words once punctuation is ignored"
                )
            elif key in reserved:
                problems.append(f"{at}: the trigger {phrase!r} is a word the bot itself answers")
            elif command:
                problems.append(
                    f"{at}: the trigger {phrase!r} is {command}: the bot answers it before any flow"
                )
            elif key in phrases and phrases[key][0] != flow.name:
                other_flow, other_at = phrases[key]
                problems.append(
                    f"{at}: the trigger {phrase!r} is claimed by two flows: "
                    f"{flow.name!r} and {other_flow!r} ({other_at})"
                )
            phrases.setdefault(key, (flow.name, at))
    return problems
