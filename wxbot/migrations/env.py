"""Alembic environment: runs against the engine the app hands over (see wxbot.db.upgrade)."""

from alembic import context
from sqlalchemy import create_engine

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: needs sqlalchemy.url in the config
    engine = create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    # SQLite: our engine emits BEGIN IMMEDIATE on begin; alembic's DDL is fine with that.
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
