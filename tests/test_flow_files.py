"""Flow files: the shipped ones load; bad ones are refused with the file, the line and what
is wrong; `wxbot flows check` says the same without starting the bot."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wxbot.cli import cli
from wxbot.flows import FlowError, load_flows

GOOD = """\
name: {name}
triggers: [{trigger}]
steps:
  - slot: order_no
    type: digits
    length: 18
    ask: {{zh: 请提供订单号。, en: Send the order number.}}
action:
  reply: {{zh: "订单 {{order_no}}"}}
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(directory: Path) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flows(directory)
    return caught.value.problems


def written_problems(directory: Path, text: str, name: str = "order") -> tuple[Path, list[str]]:
    """The file ``text`` written as flow ``name`` in ``directory``, and the problems the
    loader reports there."""
    path = write(directory, name, text)
    return path, problems(directory)


def assert_reported(path: Path, found: list[str], line: int, message: str) -> None:
    """Among ``found``, a problem of ``path`` at ``line`` that says ``message``."""
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in found), found


def test_shipped_flows_load() -> None:
    loaded = load_flows()
    assert {f.name for f in loaded.flows} == {"bind_phone", "recharge_query"}
    assert loaded.warnings == []  # every text in all five languages


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("type: digits", "type: digit", 5, "unknown slot type 'digit'"),
        ("    ask: {zh: 请提供订单号。, en: Send the order number.}\n", "", 4, "needs a prompt"),
        ('"订单 {order_no}"', '"订单 {order}"', 9, "names {order}, which is not a slot"),
        ("type: digits\n    length: 18", "type: pattern\n    pattern: '[0-9'", 6, "bad regex"),
        ("length: 18", "length: 18\n    lenght: 3", 7, "unknown key 'lenght'"),
        ("  reply:", "  reply: {zh: x}\n  reply:", 10, "given twice"),
    ],
)
def test_bad_files_name_the_file_line_and_problem(tmp_path, old, new, line, message) -> None:  # type: ignore[no-untyped-def]
    text = GOOD.format(name="order", trigger="查订单")
    assert old in text
    path, found = written_problems(tmp_path, text.replace(old, new))
    assert_reported(path, found, line, message)


def test_a_trigger_claimed_by_two_flows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "a", GOOD.format(name="a", trigger="查订单"))
    second = write(tmp_path, "b", GOOD.format(name="b", trigger="查 订单"))  # same once normalised
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{second}:2: ") and "claimed by two flows" in problem


def test_yes_and_no_stay_text_and_examples_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = GOOD.format(name="order", trigger="查订单").replace(
        "length: 18", "length: 18\n    example: 12345"
    )
    path = write(tmp_path, "order", text)
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{path}:7: ") and "not a valid answer" in problem
    write(tmp_path, "order", GOOD.format(name="order", trigger="no"))  # YAML 1.1 would say False
    assert load_flows(tmp_path).flows[0].triggers == ["no"]


def test_check_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    result = runner.invoke(cli, ["flows", "check"])
    assert result.exit_code == 0, result.output
    assert "2 flow(s) OK" in result.output
    path = write(
        tmp_path, "order", GOOD.format(name="order", trigger="查订单").replace("digits", "x")
    )
    result = runner.invoke(cli, ["flows", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{path}:5: step 'order_no': unknown slot type 'x'" in result.output


def test_bad_files_stop_start_up(tmp_path, make_app) -> None:  # type: ignore[no-untyped-def]
    from wxbot.config import ConfigError

    write(tmp_path, "order", GOOD.format(name="order", trigger="查订单").replace("ask:", "asc:"))
    with pytest.raises(ConfigError, match="needs a prompt"):
        make_app(flows_dir=str(tmp_path))


def test_models_match_the_migration(app) -> None:  # type: ignore[no-untyped-def]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from wxbot.models import Base

    mine = {"user_languages", "flow_stats"}
    with app.extensions["wxbot.engine"].connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if mine & set(map(str, _tables(d)))] == []


def _tables(diff: object) -> list[str]:
    items = diff if isinstance(diff, list) else [diff]
    names = []
    for item in items:
        for part in item if isinstance(item, tuple) else ():
            table = getattr(part, "table", None) or part
            name = getattr(table, "name", None)
            names.append(name if isinstance(name, str) else part if isinstance(part, str) else "")
    return names
