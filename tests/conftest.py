"""Fixtures shared by the whole suite: Temporal servers and databases."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from store.db import Database
from workflows import names

BIN_DIR = Path(sys.executable).parent
POSTGRES_URL_VARIABLE = "OUTBOUND_TEST_POSTGRES_URL"


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal SDK can crash while the interpreter exits after a worker
    # ran (temporalio/sdk-python issue 300). Leaving here, after pytest has
    # printed its report, with pytest's own status keeps that crash from
    # turning a green run red.
    if os.environ.get("OUTBOUND_TEST_NO_HARD_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server")
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=names.SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: SQLite, and PostgreSQL when configured."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'outbound.db'}")
        database.migrate()
        yield database
        database.dispose()
        return
    url = _postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_URL_VARIABLE}")
    yield from _postgres_database(url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbound.db'}")
    database.migrate()
    yield database
    database.dispose()


def _postgres_database(url: str) -> Iterator[Database]:
    """A fresh schema per test, so tests share no state."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = _with_search_path(url, schema)
    database = Database(scoped)
    database.migrate()
    try:
        yield database
    finally:
        database.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


async def eventually(
    check: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1
) -> object:
    """Poll ``check`` until it returns a truthy value or stops raising."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await asyncio.sleep(interval)
