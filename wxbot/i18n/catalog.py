"""The gettext catalogues, read from the .po files with Babel, and ``translate``.

Why .po at run time (not compiled .mo): the catalogues are small (a few hundred messages,
read once per process in milliseconds), translators edit exactly what runs, and there is no
build step that could ship stale binaries.
"""

from __future__ import annotations

import gettext
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en", "th", "tl", "ja")
DEFAULT_LANGUAGE = "zh"  # the source language: msgids are the Chinese texts
LANGUAGE_NAMES = {"zh": "中文", "en": "English", "th": "ไทย", "tl": "Tagalog", "ja": "日本語"}
LOCALE_DIR = Path(__file__).with_name("locales")
DOMAIN = "wxbot"


class Plural(NamedTuple):
    """A message whose translation depends on a number: ``params[count]`` picks the form."""

    singular: str
    plural: str
    count: str


Message = str | Plural


def N_(text: str) -> str:  # noqa: N802 - the gettext convention pybabel extracts by
    """Mark a module-level text for extraction; it is translated when used (translate)."""
    return text


def NP_(singular: str, plural: str, count: str) -> Plural:  # noqa: N802
    """Mark a text with plural forms; ``count`` names the parameter that holds the number."""
    return Plural(singular, plural, count)


@dataclass
class _Catalog:
    strings: dict[str, str] = field(default_factory=dict)
    plurals: dict[str, list[str]] = field(default_factory=dict)
    plural_index: Any = staticmethod(lambda n: 0)


_catalogs: dict[str, _Catalog] = {}
_lock = threading.Lock()


_NONE = _Catalog()  # the catalogue of a language without a file: nothing translated


def _load(language: str) -> _Catalog:
    catalog = _catalogs.get(language)
    if catalog is not None:
        return catalog
    if not _path(language).is_file():
        # not remembered: only languages with a catalogue file are (as many as there are
        # files), whatever names reach here
        return _NONE
    with _lock:
        if language not in _catalogs:
            _catalogs[language] = _read(language)
        return _catalogs[language]


def _path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(language: str) -> _Catalog:
    path = _path(language)
    result = _Catalog()
    if not path.exists():
        return result
    with path.open("rb") as handle:
        po = read_po(handle, locale=language, domain=DOMAIN)
    expression = _plural_expression(po.mime_headers)
    if expression:
        result.plural_index = gettext.c2py(expression)
    for message in po:
        if not message.id or message.fuzzy or not message.string:
            continue
        if isinstance(message.id, tuple):
            forms = [s for s in message.string if s]
            if forms:
                result.plurals[message.id[0]] = list(message.string)
        else:
            result.strings[message.id] = message.string
    return result


def _plural_expression(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "plural-forms":
            for part in value.split(";"):
                key, _, expression = part.strip().partition("=")
                if key.strip() == "plural":
                    return expression.strip()
    return ""


def has_translation(message: Message, language: str) -> bool:
    if language == DEFAULT_LANGUAGE:
        return True
    catalog = _load(language)
    if isinstance(message, Plural):
        return message.singular in catalog.plurals
    return message in catalog.strings


def _pick(message: Message, language: str, params: dict[str, Any]) -> str:
    if isinstance(message, Plural):
        n = int(params.get(message.count, 1))
        if language != DEFAULT_LANGUAGE:
            catalog = _load(language)
            forms = catalog.plurals.get(message.singular)
            if forms:
                index = int(catalog.plural_index(n))
                return forms[index] if index < len(forms) and forms[index] else forms[0]
        return message.singular if n == 1 else message.plural
    if language == DEFAULT_LANGUAGE:
        return message
    return _load(language).strings.get(message, message)


def translate(message: Message, language: str | None, **params: Any) -> str:
    """``message`` in ``language`` (Chinese when there is no translation), with ``params``
    filled in by ``str.format``. A translation whose placeholders are broken falls back to
    the Chinese text rather than failing the reply."""
    language = language or DEFAULT_LANGUAGE
    text = _pick(message, language, params)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        log.warning("the %s translation of %r has broken placeholders", language, message)
        source = message.singular if isinstance(message, Plural) else message
        return source.format(**params)


def reload_catalogs() -> None:
    """Forget the loaded catalogues (tests, or after editing the .po files)."""
    with _lock:
        _catalogs.clear()
