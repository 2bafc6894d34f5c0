"""The HTTP API: management endpoints and the provider's callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.errors import install_error_handlers
from api.routes import (
    agent_calls,
    agents,
    campaigns,
    contacts,
    dnc,
    inbox,
    twilio,
    usage,
    voice,
)
from config import Settings, get_settings
from store.db import Database
from workflows.client import connect_temporal

logger = logging.getLogger(__name__)


class LazyTemporal:
    """Connects to Temporal on first use, so the API starts before Temporal."""

    def __init__(self, connect: Callable[[], Awaitable[Client]]) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> Client:
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
            return self._client


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    temporal: Callable[[], Awaitable[Client]] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    database = db or Database(settings.sqlalchemy_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("API started")
        yield
        if db is None:
            database.dispose()

    app = FastAPI(
        title="Outbound",
        summary="Outbound calling campaigns for voice agents, on Temporal.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.temporal = LazyTemporal(temporal or (lambda: connect_temporal(settings)))
    install_error_handlers(app)
    routers = (contacts, agents, campaigns, dnc, twilio)
    for module in (*routers, voice, agent_calls, inbox, usage):
        app.include_router(module.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Report that the API is up."""
        return {"status": "ok"}

    return app


def app_from_environment() -> FastAPI:
    """Entry point for uvicorn: ``uvicorn api.app:app_from_environment --factory``."""
    from cli.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
