"""Alembic environment: runs against the engine the app hands over (see
wxbot.migrations.schema.upgrade)."""

from contextlib import nullcontext

from alembic import context
from sqlalchemy import create_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: needs sqlalchemy.url in the config
    engine = create_engine(config.get_main_option("sqlalchemy.url"))

# MySQL: the connection holding the upgrade lock (wxbot.migrations.guard.upgrade_lock)
locked = config.attributes.get("connection")
with nullcontext(locked) if locked is not None else engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite: our engine emits BEGIN IMMEDIATE on begin, and SQLite's DDL is transactional,
    # but Alembic assumes it is not and commits after each revision: a second process
    # upgrading at the same time then took the write lock between two revisions, read the
    # half-way version and ran the next revision too ("table memories already exists").
    # One transaction for the whole upgrade holds the write lock from the version read to
    # the last revision, and a failing revision leaves nothing half-applied.
    context.configure(
        connection=connection, render_as_batch=sqlite, transactional_ddl=True if sqlite else None
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
