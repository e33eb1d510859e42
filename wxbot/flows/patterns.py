"""A ``pattern`` slot's regular expression, refused at check time if it can backtrack
catastrophically, and matched against bounded text.

Python's ``re`` backtracks and cannot be interrupted (no timeout; the matching loop holds the
GIL), so a pattern such as ``^(\\w+\\s?)*$`` checked against a user's 30-character message
takes seconds, and the worker, with every user queued behind it, waits. Two defences:

1. **Refused at check time** (``wxbot flows check``, start-up): the constructs that make the
   work grow exponentially or as a high power of the text's length. The test is the classic
   one, made concrete: a run of one character ``c`` (``aaaa…``) that two quantified parts of
   the pattern could share in many ways, with nothing between them that could not also match
   ``c``.

   - inside a group repeated more than once (``(…)+``, ``(…)*``, ``(…){2,}``), any two parts of
     variable width, the group's next round included: ``(a+)+``, ``(\\d{1,3})+``,
     ``(\\w+\\s?)*``, ``(a|aa)+``; and alternatives that can start with the same character
     (``(ab|ac)+``: write ``a[bc]``);
   - anywhere, a chain of quantified parts that could split such a run in more than
     MAX_SPLITS ways, a wide one (``*``, ``+``, ``{n,}``, ``{m,n}`` with n - m > 16) counting
     as MAX_SEARCH ways: two wide ones (``\\w+\\d+``, ``\\w+\\s*\\w+``, ``.+@.+``), or many
     narrow ones (``a?a?a?…a``, 2^n ways).

   Quantifiers separated by a character the first cannot match stay allowed (``\\w+\\s+\\w+``,
   ``[\\w.+-]+@[\\w-]+\\.[a-z]{2,}``, ``(?:\\d{1,3}\\.){3}\\d{1,3}``, ``[A-Z]+\\d+``).

2. **Bounded text** at run time, whatever slipped through: an answer is matched only up to
   MAX_ANSWER characters (longer is simply not a match), and a message is searched for a
   value in passing only up to MAX_SEARCH characters. What 1. lets through then costs a few
   milliseconds at worst (tests/test_flows_hostile.py times the usual patterns).

A time budget was the other option: it needs the third-party ``regex`` module (or a
process per match), which the project does not depend on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

try:  # Python 3.11+
    from re import _compiler as sre_compile  # type: ignore[attr-defined]
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile  # type: ignore[no-redef]
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_ANSWER = 500  # characters of an answer a pattern is matched against (after trimming)
MAX_SEARCH = 500  # characters of a message searched for a value in passing
MAX_PATTERN = 1000  # characters of a regex (its check looks at pairs of its parts)
MAX_SPLITS = 32 * MAX_SEARCH  # ways a chain of quantifiers may split a run (one wide: 32)
WIDE = 16  # a quantifier whose width may vary by more than this is "wide"

_ONE_CHAR = {sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN}
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT} | (
    {sre.POSSESSIVE_REPEAT} if hasattr(sre, "POSSESSIVE_REPEAT") else set()
)
_GROUPS = {sre.SUBPATTERN} | ({sre.ATOMIC_GROUP} if hasattr(sre, "ATOMIC_GROUP") else set())
# characters tried for each part (besides the pattern's own literals and range ends)
_SAMPLES = "".join(map(chr, range(128))) + (
    "\u00a0\u00b2\u00e9\u00df\u0130\u0131\u017f\u212a\u0660\u0966\u0e51\uff10\uff21\uff41"
    "\u3000\u3001\u3002\u4e00\u4e2d\u9fa5\u3042\u30a2\uac00\u0e01\u2028\U0001f600"
)


class PatternError(ValueError):
    """A pattern refused, with the reason in words."""


@dataclass(frozen=True)
class Compiled:
    regex: re.Pattern[str]  # the whole answer must match
    search: re.Pattern[str] | None  # the same without ^ / $, to find a value inside a message
    max_width: int  # the longest text the pattern can match (capped at MAX_ANSWER)


def compile_pattern(source: str) -> Compiled:
    if len(source) > MAX_PATTERN:
        raise PatternError(f"the regex is {len(source):,} characters long; at most {MAX_PATTERN:,}")
    try:
        regex = re.compile(source)
        parsed = sre_parse.parse(source)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"bad regex {source!r}: {exc}") from None
    analysis = _Analysis(parsed)
    problem = analysis.problem()
    if problem:
        raise PatternError(f"the regex {source!r} {problem}")
    never = "matches only empty text" if parsed.getwidth()[1] == 0 else analysis.never()
    if never:
        raise PatternError(
            f"the regex {source!r} can never match an answer (it {never}); "
            "every answer the user sends would be refused"
        )
    stripped = _unanchored(parsed)
    search = sre_compile.compile(stripped, regex.flags) if stripped.data else None
    return Compiled(regex, search, min(parsed.getwidth()[1], MAX_ANSWER))


def _unanchored(parsed: Any) -> Any:
    """The pattern without its leading ^ and trailing $ (of each top-level alternative)."""
    data = list(parsed.data)
    if len(data) == 1 and data[0][0] is sre.BRANCH:
        branches = [_unanchored(b) for b in data[0][1][1]]
        data = [(sre.BRANCH, (None, branches))]
    else:
        while data and data[0] == (sre.AT, sre.AT_BEGINNING):
            data.pop(0)
        while data and data[-1] == (sre.AT, sre.AT_END):
            data.pop()
    return sre_parse.SubPattern(parsed.state, data)


# --- the analysis --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One item of a sequence, as far as backtracking is concerned."""

    low: int  # shortest text it matches
    high: int  # longest (capped)
    runs: frozenset[str]  # characters c it can match a run of (c, cc, ccc, ... some of them)
    first: frozenset[str]  # characters it can start with

    @property
    def variable(self) -> bool:
        return self.low != self.high

    @property
    def wide(self) -> bool:
        return self.high - self.low > WIDE


class _Analysis:
    def __init__(self, parsed: Any) -> None:
        self.state = parsed.state
        self.parsed = parsed
        extra = set()
        self._collect(parsed, extra)
        self.universe = "".join(sorted(set(_SAMPLES) | extra))
        self.everything = frozenset(self.universe)
        self._sets: dict[tuple[Any, Any, int], frozenset[str]] = {}

    def problem(self) -> str | None:
        return self._sequence(self.parsed.data, self.state.flags)

    # --- a pattern that matches nothing ----------------------------------------------------

    def never(self) -> str | None:
        """Why no text at all can match (a part that must match cannot), if that is plain
        from the parts: ``(?!)`` (a negative lookaround that always fails), ``[^\\s\\S]`` (a
        class of no character), ``a^`` / ``\\Z a`` (the start after a character, the end
        before one). Conservative: None when in doubt."""
        return self._never(self.parsed.data, self.state.flags)

    def _never(self, data: Any, flags: int) -> str | None:
        items = self._flat(data, flags)
        before = 0  # characters the parts so far must match
        for i, (op, av, f) in enumerate(items):
            if op in _ONE_CHAR and not self._some_char(op, av, f):
                return "has a character class that matches no character"
            if op in _REPEATS and av[0] > 0:
                reason = self._never(av[2].data, f)
                if reason:
                    return reason
            if op is sre.BRANCH:
                reasons = [self._never(b.data, f) for b in av[1]]
                if all(reasons):
                    return reasons[0]
            if op is sre.ASSERT_NOT and self._always_empty(av[1].data, f):
                return "has a negative lookaround such as (?!) that never lets it match"
            if op is sre.ASSERT:
                reason = self._never(av[1].data, f)
                if reason:
                    return reason
            if op is sre.AT and before > 0 and _starts_text(av, f):
                return "asks for the start of the text (^, \\A) after a character"
            after = items[i + 1 :]
            if op is sre.AT and av is sre.AT_END_STRING and any(self._part(*x).low for x in after):
                return "asks for the end of the text (\\Z) before a character"
            before += self._part(op, av, f).low
        return None

    def _always_empty(self, data: Any, flags: int) -> bool:
        """Whether the sequence matches the empty text wherever it is tried: (?!) never lets
        anything through."""
        for op, av, f in self._flat(data, flags):
            if op in _REPEATS and av[0] == 0:
                continue
            if op is sre.BRANCH and any(self._always_empty(b.data, f) for b in av[1]):
                continue
            return False
        return True

    def _some_char(self, op: Any, av: Any, flags: int) -> bool:
        """Whether a one-character part matches any character: the samples, and the
        characters either side of each of its ranges and literals ([^\\x00-\\x40\\x42-…])."""
        if op is not sre.IN:  # a literal, any character but one, any but a newline
            return True
        near: set[str] = set()
        for item_op, item_av in av:
            ends = item_av if item_op is sre.RANGE else (item_av, item_av)
            if item_op in (sre.RANGE, sre.LITERAL):
                near.update(chr(c) for c in (ends[0] - 1, ends[1] + 1) if 0 <= c <= 0x10FFFF)
        one = sre_compile.compile(sre_parse.SubPattern(self.state, [(op, av)]), flags)
        return any(one.fullmatch(c) for c in (*self.universe, *near))

    # characters of the pattern itself (literals and range ends) are sampled too
    def _collect(self, data: Any, out: set[str]) -> None:
        for op, av in data:
            if op in (sre.LITERAL, sre.NOT_LITERAL):
                out.add(chr(av))
            elif op is sre.RANGE:
                out.update((chr(av[0]), chr(av[1])))
            elif op is sre.IN:
                self._collect(av, out)
            else:
                for child in _children(op, av):
                    self._collect(child, out)

    # --- checks ----------------------------------------------------------------------------

    def _sequence(self, data: Any, flags: int) -> str | None:
        items = self._flat(data, flags)
        for op, av, item_flags in items:  # nested sequences first
            for child in _children(op, av):
                problem = self._sequence(child, _flags(op, av, item_flags))
                if problem:
                    return problem
            if op in _REPEATS and av[1] > 1:
                problem = self._repeated(av[2], item_flags)
                if problem:
                    return problem
        parts = [self._part(op, av, f) for op, av, f in items]
        c = _costly_run(parts)
        if c is not None:
            return (
                "can take a very long time on some answers: its quantifiers (*, +, ?, {m,n}) "
                f"can share a run of {c!r} in too many ways; make them match different "
                "characters or put a separator between them"
            )
        return None

    def _repeated(self, body: Any, flags: int) -> str | None:
        """A repeated group: two rounds of it, side by side, must not share a run either."""
        parts = [self._part(op, av, f) for op, av, f in self._flat(body, flags)]
        c = _shared_run(parts + parts, range(len(parts)), wide=False)
        if c is not None:
            return (
                "can take exponential time on some answers: a repeated group ((…)+, (…)*) "
                f"can split a run of {c!r} between its rounds in many ways (nested "
                "quantifiers such as (a+)+ or (\\w+\\s?)*); repeat something that ends with a "
                "separator, or drop the inner quantifier"
            )
        return self._alternatives(body, flags)

    def _alternatives(self, data: Any, flags: int) -> str | None:
        """Alternatives in a repeated group must start differently: (ab|ac)+ is a[bc]."""
        for op, av in data:
            if op is sre.BRANCH:
                firsts = [self._first_of(b.data, flags) for b in av[1]]
                for i, first in enumerate(firsts):
                    for other in firsts[i + 1 :]:
                        shared = first & other
                        if shared:
                            return (
                                "can take exponential time on some answers: alternatives "
                                "(a|b) inside a repeated group can both start with "
                                f"{min(shared)!r}; make them start differently"
                            )
            for child in _children(op, av):
                problem = self._alternatives(child, _flags(op, av, flags))
                if problem:
                    return problem
        return None

    # --- what each part can match ----------------------------------------------------------

    def _flat(self, data: Any, flags: int) -> list[tuple[Any, Any, int]]:
        """The items of a sequence, groups without a quantifier opened up."""
        items = []
        for op, av in data:
            if op in _GROUPS:
                items.extend(self._flat(_body(op, av).data, _flags(op, av, flags)))
            else:
                items.append((op, av, flags))
        return items

    def _part(self, op: Any, av: Any, flags: int) -> _Part:
        if op in _ONE_CHAR:
            chars = self._chars(op, av, flags)
            return _Part(1, 1, chars, chars)
        if op in _REPEATS:
            low, high, body = av
            inner = self._seq_part(body.data, flags)
            high = min(high * inner.high, MAX_ANSWER * 4) if high else 0
            runs = inner.runs if high else frozenset()
            return _Part(low * inner.low, high, runs, inner.first if high else frozenset())
        if op is sre.BRANCH:
            branches = [self._seq_part(b.data, flags) for b in av[1]]
            return _Part(
                min(b.low for b in branches),
                max(b.high for b in branches),
                frozenset().union(*(b.runs for b in branches)),
                frozenset().union(*(b.first for b in branches)),
            )
        if op is sre.GROUPREF_EXISTS:
            branches = [self._seq_part(b.data, flags) for b in av[1:] if b is not None]
            low = 0 if len(branches) < 2 else min(b.low for b in branches)
            return _Part(
                low,
                max(b.high for b in branches),
                frozenset().union(*(b.runs for b in branches)),
                frozenset().union(*(b.first for b in branches)),
            )
        if op is sre.GROUPREF:  # the text a group matched: fixed once matched
            return _Part(0, 0, self.everything, self.everything)
        return _Part(0, 0, frozenset(), frozenset())  # ^ $ \b lookarounds: zero width

    def _seq_part(self, data: Any, flags: int) -> _Part:
        parts = [self._part(op, av, f) for op, av, f in self._flat(data, flags)]
        low = sum(p.low for p in parts)
        high = min(sum(p.high for p in parts), MAX_ANSWER * 4)
        # a run of c: every part that must match something can match a run of c
        needed = [p.runs for p in parts if p.low > 0]
        if needed:
            runs = frozenset.intersection(*needed)
        else:
            runs = frozenset().union(*(p.runs for p in parts))
        return _Part(low, high, runs, self._first_parts(parts))

    def _first_of(self, data: Any, flags: int) -> frozenset[str]:
        return self._first_parts([self._part(op, av, f) for op, av, f in self._flat(data, flags)])

    @staticmethod
    def _first_parts(parts: list[_Part]) -> frozenset[str]:
        first: frozenset[str] = frozenset()
        for p in parts:
            first |= p.first
            if p.low > 0:
                break
        return first

    def _chars(self, op: Any, av: Any, flags: int) -> frozenset[str]:
        """The characters one single-character item matches, among those sampled."""
        key = (op, id(av) if op is sre.IN else av, flags)
        found = self._sets.get(key)
        if found is None:
            item = sre_parse.SubPattern(self.state, [(op, av)])
            one = sre_compile.compile(item, flags)
            found = frozenset(c for c in self.universe if one.fullmatch(c))
            self._sets[key] = found
        return found


def _costly_run(parts: list[_Part]) -> str | None:
    """A character c whose run a chain of quantified parts could split in more than
    MAX_SPLITS ways (a wide part counts as MAX_SEARCH ways): ``\\w+\\d+``, ``a?a?a?…a``."""
    for i, first in enumerate(parts):
        if not first.variable:
            continue
        shared, ways = first.runs, _ways(first)
        for other in parts[i + 1 :]:
            if other.variable and shared & other.runs:
                shared, ways = shared & other.runs, ways * _ways(other)
                if ways > MAX_SPLITS:
                    return min(shared)
            elif other.low > 0:
                shared = shared & other.runs
            if not shared:
                break
    return None


def _ways(part: _Part) -> int:
    return MAX_SEARCH if part.wide else part.high - part.low + 1


def _shared_run(parts: list[_Part], starts: range, wide: bool) -> str | None:
    """A character c whose run two quantified parts could share: both can match runs of c,
    and every part between them can too (or can match nothing). Only wide parts count, or
    (``wide`` False) every part of variable width. Linear for most patterns: the walk from a
    part stops at the first part in between that cannot match its runs."""
    for i in starts:
        first = parts[i]
        if not (first.wide if wide else first.variable):
            continue
        shared = first.runs
        for other in parts[i + 1 :]:
            if (other.wide if wide else other.variable) and shared & other.runs:
                return min(shared & other.runs)
            if other.low > 0:
                shared = shared & other.runs
            if not shared:
                break
    return None


def _starts_text(at: Any, flags: int) -> bool:
    """Whether an anchor matches only at the start of the text: \\A, or ^ without MULTILINE."""
    if at is sre.AT_BEGINNING_STRING:
        return True
    return at is sre.AT_BEGINNING and not flags & sre.SRE_FLAG_MULTILINE


def _body(op: Any, av: Any) -> Any:
    return av if op is not sre.SUBPATTERN else av[3]


def _flags(op: Any, av: Any, flags: int) -> int:
    if op is sre.SUBPATTERN:
        return (flags | av[1]) & ~av[2]
    return flags


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-sequences of an item (to check them as sequences of their own)."""
    if op in _REPEATS:
        return [av[2].data]
    if op is sre.SUBPATTERN:
        return [av[3].data]
    if op in _GROUPS:  # atomic group
        return [av.data]
    if op is sre.BRANCH:
        return [b.data for b in av[1]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [av[1].data]
    if op is sre.GROUPREF_EXISTS:
        return [b.data for b in av[1:] if b is not None]
    return []
