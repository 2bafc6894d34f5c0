"""Sessions on SQLite: reads never wait for a writer, and cannot write."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from store.models import Agent


def add_agent(session, name: str) -> None:
    session.add(
        Agent(name=name, from_number="+12025550100", voice_url="https://a.test/v")
    )


def test_read_session_skips_open_write(sqlite_db):
    with sqlite_db.session() as writer:
        add_agent(writer, "committed")
        writer.commit()
        add_agent(writer, "uncommitted")
        writer.flush()  # holds SQLite's write lock until the end of the block
        with sqlite_db.read_session() as reader:
            names = reader.exec(select(Agent.name)).all()

    assert names == ["committed"]


def test_read_session_rejects_writes(sqlite_db):
    with sqlite_db.read_session() as reader:
        add_agent(reader, "a")
        with pytest.raises(OperationalError, match="readonly"):
            reader.commit()


def test_concurrent_write_sessions_commit(sqlite_db):
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for round_no in range(10):
                with sqlite_db.session() as session:
                    add_agent(session, f"{index}-{round_no}")
                    session.commit()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with sqlite_db.read_session() as reader:
        assert len(reader.exec(select(Agent)).all()) == 80
