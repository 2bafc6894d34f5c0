"""Alembic environment: runs the migrations against the configured URL."""

from alembic import context
from sqlalchemy import create_engine, pool

import store.imports  # noqa: F401  (registers the tables on SQLModel.metadata)
import store.models  # noqa: F401
from sqlmodel import SQLModel

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
