"""Engine, sessions and schema migration for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL mode and a busy timeout.

    A read-only SQLite engine begins its transactions without the write lock
    and refuses to write, so its sessions never wait for a writer.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _configure_sqlite)
        if read_only:
            event.listen(engine, "connect", _refuse_writes)
            event.listen(engine, "begin", _begin_deferred)
        else:
            event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection, _record) -> None:
    # Let SQLAlchemy issue BEGIN itself so that every transaction can take the
    # write lock up front (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection) -> None:
    # A deferred transaction that reads and then writes can fail with
    # "database is locked" without waiting; BEGIN IMMEDIATE waits for the lock
    # (up to the busy timeout) and serialises writers, which the line limiter
    # and the do-not-call check rely on.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(connection) -> None:
    # In WAL mode a reader sees one snapshot, and it neither waits for the
    # writer nor blocks it.
    connection.exec_driver_sql("BEGIN")


def _refuse_writes(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def migrate(url: str) -> None:
    """Bring the schema up to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


class Database:
    """The engines and session factories, shared by everything in one process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        sqlite = url.startswith("sqlite")
        self._read_engine = make_engine(url, read_only=True) if sqlite else self.engine
        # SQLite has one write lock per file, and a connection that finds it
        # taken sleeps for growing intervals before looking again, so under
        # load the lock often sits free while every waiter sleeps. The threads
        # of one process take turns here instead, and only the processes
        # compete for SQLite's lock. Reentrant, so that a session opened
        # inside another on the same thread behaves as it did before.
        self._write_turn = threading.RLock() if sqlite else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that may write, after this thread's turn on SQLite."""
        if self._write_turn is None:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
            return
        with self._write_turn, Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def request_session(self) -> Iterator[Session]:
        """Open a session that may write and may be closed on another thread.

        It waits for SQLite's write lock like any connection, but not for the
        process's turn, because a lock taken on one thread must be released
        on the same thread.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Open a session that only reads. On SQLite it does not wait for a writer."""
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    def migrate(self) -> None:
        migrate(self.url)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._read_engine is not self.engine:
            self._read_engine.dispose()
