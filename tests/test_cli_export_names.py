"""`wxbot kb export FILE --format F` refuses a FILE whose extension names another format:
`--format csv` wrote comma text into faq.xlsx (Excel refuses to open it, and `kb import`
reads it by its name as a workbook), and synonym groups went into a .xlsx as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wxbot.cli import cli


def _export(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, ["kb", "export", *args])


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("faq.xlsx", "csv"),
        ("faq.csv", "xlsx"),
        ("faq.jsonl", "txt"),
        ("faq.txt", "jsonl"),
        ("words.xlsx", "synonyms"),
        ("words.csv", "synonyms"),
        ("synonyms.xlsx", None),  # named as synonyms: text, which a workbook cannot hold
    ],
)
def test_a_name_that_says_another_format_is_refused(app, tmp_path: Path, name, fmt) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / name
    result = _export(app, str(target), *(["--format", fmt] if fmt else []))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "name it ." in result.output
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("faq.csv", "csv"),
        ("faq.tsv", "csv"),
        ("faq.json", "jsonl"),
        ("faq.md", "txt"),
        ("faq.backup", "jsonl"),  # no extension that names a format: --format decides
        ("words.txt", "synonyms"),
        ("synonyms.csv", None),  # as before: `kb import` reads a file so named as synonyms
        ("faq.xlsx", None),
    ],
)
def test_names_that_fit_are_written(app, tmp_path: Path, name, fmt) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / name
    result = _export(app, str(target), *(["--format", fmt] if fmt else []))
    assert result.exit_code == 0, result.output
    assert target.exists()
