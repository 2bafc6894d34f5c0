"""Alembic environment: runs the migrations against the configured URL."""

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import store.imports
import store.models
import store.reports  # noqa: F401

target_metadata = SQLModel.metadata


def render_item(kind: str, item: object, autogen_context: object) -> str | bool:
    """Write project column types as the plain SQLAlchemy types they wrap."""
    from store.types import UtcDateTime

    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
