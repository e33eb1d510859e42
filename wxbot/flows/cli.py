"""``wxbot flows check``: validate the flow files without starting the bot."""

from __future__ import annotations

import os

import click

from wxbot.flows import FlowError, default_dir, load_flows


@click.group("flows")
def flows() -> None:
    """Business flows (YAML files)."""


@flows.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--strict", is_flag=True, help="Fail on warnings too (missing translations).")
def check(directory: str | None, strict: bool) -> None:
    """Validate DIRECTORY (default: $WXBOT_FLOWS_DIR, else knowledge/flows)."""
    directory = directory or os.environ.get("WXBOT_FLOWS_DIR") or None
    where = directory or str(default_dir())
    try:
        loaded = load_flows(directory)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise click.ClickException(f"{len(exc.problems)} problem(s) in {where}") from None
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    names = ", ".join(f.name for f in loaded.flows) or "none"
    click.echo(f"{len(loaded.flows)} flow(s) OK in {where}: {names}")
    if strict and loaded.warnings:
        raise click.ClickException(f"{len(loaded.warnings)} warning(s) with --strict")
