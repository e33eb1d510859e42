"""The ``wxbot`` command: a Flask/click group (init-db, serve, sessions, kb, chat)."""

from __future__ import annotations

import importlib
import logging

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from wxbot.config import ConfigError

# (module, attribute) of commands that live with their feature
FEATURE_COMMANDS = (
    ("wxbot.qa.cli", "kb"),
    ("wxbot.wechat.chat", "chat"),
    ("wxbot.flows.cli", "flows"),
)


def _create_app():  # type: ignore[no-untyped-def]
    from wxbot import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group(
    cls=FlaskGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
)
def cli() -> None:
    """wxbot: a WeChat Official Account bot backend."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@cli.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    from wxbot.db import current_revision, upgrade

    engine = current_app.extensions["wxbot.engine"]
    upgrade(engine)
    click.echo(
        f"database ready at {engine.url.render_as_string(hide_password=True)} "
        f"(schema {current_revision(engine)})"
    )


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="gunicorn worker processes  [default: one per core]",
)
@click.option("--threads", type=click.IntRange(min=1), help="threads per worker  [default: 4]")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
@click.pass_context
def serve(
    ctx: click.Context, host: str, port: int, workers: int | None, threads: int | None, dev: bool
) -> None:
    """Serve /wechat with gunicorn (or the development server with --dev)."""
    from flask.cli import ScriptInfo

    def load_app():  # type: ignore[no-untyped-def]
        return ctx.ensure_object(ScriptInfo).load_app()

    click.echo(f"wxbot listening on http://{host}:{port}/wechat")
    if dev:
        from werkzeug.serving import run_simple

        # Flask refuses app.run() inside its CLI; run werkzeug's threaded server directly.
        run_simple(host, port, load_app(), threaded=True)
        return
    from wxbot import serving

    serving.run(load_app, host, port, workers, threads)


@cli.group("sessions")
def sessions() -> None:
    """Conversation contexts."""


@sessions.command("cleanup")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(min=1))
@with_appcontext
def sessions_cleanup(batch: int) -> None:
    """Delete expired contexts and day-old dedup records, and empty histories older than
    WXBOT_MEMORY_DAYS, in batches."""
    bot = current_app.extensions["wxbot.bot"]
    contexts, seen = bot.clean_up(batch)
    histories = bot.forget_old_histories(batch)
    click.echo(
        f"deleted {contexts} expired contexts and {seen} old dedup records;"
        f" emptied {histories} stored histories older than the retention"
    )


for module_name, attribute in FEATURE_COMMANDS:
    cli.add_command(getattr(importlib.import_module(module_name), attribute))


def main() -> None:
    cli(prog_name="wxbot")
