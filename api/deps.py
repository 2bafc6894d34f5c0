"""Dependencies shared by the routes: settings, sessions, Temporal, the API key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request, status
from fastapi.security import APIKeyHeader
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from config import Settings
from store.db import Database

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    # A request's session may live across awaits and end on another thread,
    # so it does not take the process's write turn (see Database.session).
    with db.request_session() as session:
        yield session


def get_read_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.read_session() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    return await request.app.state.temporal()


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    key: Annotated[str | None, Depends(_api_key_header)],
) -> None:
    expected = settings.api_key
    if expected is None:
        raise ApiError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "api_key_not_configured",
            "the management API is disabled: set OUTBOUND_API_KEY",
        )
    if key is None or not secrets.compare_digest(key.encode(), expected.encode()):
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_api_key",
            "missing or invalid X-API-Key header",
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
# For routes that only read. On SQLite they do not wait for a writer.
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ApiKey = Depends(require_api_key)


# The largest id a database integer column holds; a larger one is rejected as
# invalid instead of failing in the database driver.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
AttemptQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
