"""The ``wxbot`` command: a Flask/click group (init-db, serve, sessions, kb, chat)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.exc import DBAPIError

from wxbot.config import ConfigError
from wxbot.serving import MAX_GRACEFUL_TIMEOUT, MAX_THREADS, MAX_WORKERS

# (module, attribute) of commands that live with their feature
FEATURE_COMMANDS = (
    ("wxbot.qa.cli", "kb"),
    ("wxbot.wechat.chat", "chat"),
    ("wxbot.flows.cli", "flows"),
)


# Commands that read or write wxbot's tables: refused in one line on a database without the
# schema (before: a traceback ending in "no such table"). init-db creates it, serve checks
# it itself, chat may talk to a remote bot and flows check reads files only.
NEEDS_SCHEMA = frozenset({"kb", "sessions"})


def _create_app():  # type: ignore[no-untyped-def]
    from wxbot import create_app

    try:
        # Without the knowledge index: `wxbot --help`, `kb export` or `sessions cleanup` took
        # seconds more with a big base to load an index they never read. serve and chat,
        # which answer messages, load it (wxbot.load_knowledge).
        app = create_app(load_knowledge=False)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    ctx = click.get_current_context(silent=True)
    command = ctx.command_path.split()[1:2] if ctx is not None else []
    if command and command[0] in NEEDS_SCHEMA:
        from wxbot.migrations.guard import SchemaError, require_schema

        try:
            require_schema(app.extensions["wxbot.engine"])
        except SchemaError as exc:
            raise click.ClickException(str(exc)) from None
    return app


class Interrupted(click.ClickException):
    """Ctrl-C: one line and the shell's code for SIGINT (128 + 2). click's own handling
    says "Aborted!" and exits 1, which a script cannot tell from a failure."""

    exit_code = 130

    def __init__(self) -> None:
        super().__init__("interrupted")

    def show(self, file: Any = None) -> None:
        # A newline first: the terminal has echoed ^C on the current line.
        click.echo(f"\nError: {self.format_message()}", err=True)


# FlaskGroup's options that do nothing for wxbot, which builds its own app from WXBOT_*
# settings: -A/--app was accepted and ignored (the app was wxbot's anyway), -e/--env-file failed
# on python-dotenv, which wxbot does not install. Hidden, and refused in one line when given
# (exit 2, a bad option), not "No such option"; FLASK_APP / FLASK_ENV_FILE set in the
# environment for another project are ignored (FLASK_ENV_FILE broke every command before).
REFUSED_FLASK_OPTIONS = {
    "app": (
        ("-A", "--app"),
        "wxbot builds its own app: configure it with WXBOT_* environment variables or"
        " instance/wxbot.cfg",
    ),
    "env_file": (
        ("-e", "--env-file"),
        "wxbot reads no env files: set the WXBOT_* variables in its environment (docker"
        " --env-file, systemd EnvironmentFile=, or `set -a; . FILE; set +a`) or in"
        " instance/wxbot.cfg",
    ),
}


def _refused_option(opts: tuple[str, ...], reason: str) -> click.Option:
    def refuse(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise click.UsageError(f"{'/'.join(opts)} is not supported: {reason}", ctx)

    return click.Option(
        list(opts),
        hidden=True,
        is_eager=True,  # refused before any other option is acted on
        expose_value=False,
        allow_from_autoenv=False,
        callback=refuse,
    )


class WxbotGroup(FlaskGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = [
            _refused_option(*REFUSED_FLASK_OPTIONS[p.name])
            if p.name in REFUSED_FLASK_OPTIONS
            else p
            for p in self.params
        ]

    # wxbot's commands are all its own (none come from app.cli nor from plugins' "flask.commands"
    # entry points): FlaskGroup built the app (database, flows, warnings) to list or look up
    # commands, so `wxbot --help` or a mistyped command printed the demo-credentials warning
    # and took a second. Only running a command builds it now (with_appcontext).
    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # FlaskGroup's loads FLASK_ENV_FILE and FLASK_APP first for a bare `--help`: neither
        # means anything to wxbot.
        return click.Group.parse_args(self, ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None
        except DBAPIError as exc:
            # A database that refuses mid-command (a user without INSERT, a server gone
            # after the schema check): one line, not SQLAlchemy's traceback and SQL.
            from wxbot.migrations.guard import database_error

            raise click.ClickException(f"database error: {database_error(exc)}") from None


class _AlembicPreamble(logging.Filter):
    """Drops the two lines Alembic logs at INFO on every connection it migrates on:
    "Context impl SQLiteImpl." and "Will assume non-transactional DDL.", the latter wrong
    for SQLite here (wxbot/migrations/env.py runs its whole upgrade in one transaction)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl ", "Will assume "))


_ALEMBIC_PREAMBLE = _AlembicPreamble()


@click.group(
    cls=WxbotGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
)
def cli() -> None:
    """wxbot: a WeChat Official Account bot backend."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its plugins at INFO whenever it starts: noise in every
    # `wxbot init-db` and start-up; the migrations it runs are still logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_ALEMBIC_PREAMBLE)
    # init-db's drift check compares the models with the database through Alembic's
    # autogenerate, which logs each difference at INFO; init-db reports them itself.
    logging.getLogger("alembic.autogenerate").setLevel(logging.WARNING)


@cli.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (safe to run again, and from many containers
    at once: one migrates, the others wait for it)."""
    from wxbot.migrations.guard import NEWER, schema_drift
    from wxbot.migrations.schema import upgrade
    from wxbot.redaction import display_url

    engine = current_app.extensions["wxbot.engine"]
    where = display_url(engine.url)
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        # sqlite:/// (`sqlite:///$DB` with DB unset): "database ready" and exit 0 before, for
        # a schema gone when the command ended, and every later command said to run init-db.
        raise click.ClickException(
            f"{where} is an in-memory database: nothing created in it outlives this command;"
            " set WXBOT_DATABASE_URL to a file, e.g. sqlite:////var/lib/wxbot/wxbot.db"
        )
    with _one_line_errors(where):
        status = upgrade(engine)
        drift = schema_drift(engine)
    if status.state == NEWER:
        click.echo(f"{status.message}; left as it is", err=True)
    for line in drift:  # edited by hand: say what, but it is no reason to stop
        click.echo(f"warning: {line}", err=True)
    click.echo(f"database ready at {where} (schema {status.revision})")


@contextmanager
def _one_line_errors(where: str) -> Iterator[None]:
    """A database that is unreachable, refuses us or is not wxbot's is one line and exit
    code 1, not a traceback wall."""
    from sqlalchemy.exc import DBAPIError

    from wxbot.migrations.guard import SchemaError, database_error

    try:
        yield
    except SchemaError as exc:
        raise click.ClickException(f"{where}: {exc}") from None
    except DBAPIError as exc:
        raise click.ClickException(f"database error at {where}: {database_error(exc)}") from None


def _check_schema_before_serving(app: Flask) -> None:
    from wxbot.migrations.guard import SchemaError, check_before_serving

    try:
        check_before_serving(app.extensions["wxbot.engine"])
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    help="gunicorn worker processes  [default: one per core]",
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    help="threads per worker  [default: 4]",
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(5, MAX_GRACEFUL_TIMEOUT),
    help="seconds a stop may take (keep it under the container's stop grace period); "
    "slow work under way gets all but 5 of them to finish  [default: 25]",
)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int | None,
    threads: int | None,
    graceful_timeout: int | None,
    dev: bool,
) -> None:
    """Serve /wechat with gunicorn (or the development server with --dev)."""
    from flask.cli import ScriptInfo

    def load_app():  # type: ignore[no-untyped-def]
        from wxbot import load_knowledge

        app = ctx.ensure_object(ScriptInfo).load_app()
        if app.debug and not dev:
            # Flask's debug mode (`wxbot --debug`, FLASK_DEBUG=1: meant for --dev) would let an
            # unexpected error escape to gunicorn and reload templates on every request.
            click.echo("--debug / FLASK_DEBUG is for --dev: gunicorn serves with it off", err=True)
            app.debug = False
        _check_schema_before_serving(app)
        load_knowledge(app)  # in gunicorn's master, before the workers fork: shared pages
        # Said once nothing stands in the way: before, it came first, ahead of a port in
        # use, a host that is not this machine's or a schema error.
        click.echo(f"wxbot listening on http://{url_host(host)}:{port}/wechat")
        return app

    from wxbot import serving
    from wxbot.serving import url_host

    try:
        if dev:
            from werkzeug.serving import run_simple

            serving.check_listen(host, port)
            # Flask refuses app.run() inside its CLI; run werkzeug's threaded server directly.
            run_simple(host.strip("[]"), port, load_app(), threaded=True)
            return
        stop = {} if graceful_timeout is None else {"graceful_timeout": graceful_timeout}
        serving.run(load_app, host, port, workers, threads, **stop)
    except serving.CannotServe as exc:
        # One line at once, not the app loaded first and then gunicorn's five retries, five
        # seconds of ERROR lines and "Can't connect" (or "'' is not a valid port number"
        # for an IPv6 address).
        raise click.ClickException(str(exc)) from None


@cli.group("sessions")
def sessions() -> None:
    """Conversation contexts."""


# Each batch is one transaction holding its rows' locks; past a million (or the databases'
# 64-bit integers: a traceback before) it is no batch at all.
MAX_CLEANUP_BATCH = 1_000_000


@sessions.command("cleanup")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, MAX_CLEANUP_BATCH))
@with_appcontext
def sessions_cleanup(batch: int) -> None:
    """Delete expired contexts, day-old dedup records and ended SMS verifications, empty
    histories and delete kept LLM answers and did-you-mean votes older than WXBOT_MEMORY_DAYS,
    and delete unanswered questions not asked for WXBOT_UNANSWERED_DAYS, in batches."""
    bot = current_app.extensions["wxbot.bot"]
    contexts, seen = bot.clean_up(batch)
    histories = bot.forget_old_histories(batch)
    answers = bot.forget_old_answers(batch)
    votes = bot.forget_old_votes(batch)
    questions = bot.forget_stale_unanswered(batch)
    click.echo(
        f"deleted {contexts} expired contexts and {seen} old dedup records;"
        f" emptied {histories} stored histories and deleted {answers} kept LLM answers and"
        f" {votes} did-you-mean votes older than the retention;"
        f" deleted {questions} unanswered questions nobody asked within the retention"
    )


for module_name, attribute in FEATURE_COMMANDS:
    cli.add_command(getattr(importlib.import_module(module_name), attribute))


def main() -> None:
    cli(prog_name="wxbot")
