"""An API on a test database, with a stand-in for Temporal that records signals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from config import Settings
from store.db import Database

API_KEY = "test-api-key"
AUTH_TOKEN = "test-auth-token"
PUBLIC_URL = "https://outbound.example.test"


@dataclass
class RecordingTemporal:
    """Records signals and workflow starts instead of sending them."""

    signals: list[tuple[str, str, Any]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self, workflow_id)

    async def start_workflow(
        self, _workflow: Any, _arg: Any, *, id: str, **_: Any
    ) -> None:
        self.started.append(id)


@dataclass
class _Handle:
    temporal: RecordingTemporal
    workflow_id: str

    async def signal(self, name: Any, arg: Any = None) -> None:
        self.temporal.signals.append(
            (self.workflow_id, getattr(name, "__name__", name), arg)
        )


@pytest.fixture
def temporal() -> RecordingTemporal:
    return RecordingTemporal()


@pytest.fixture
def api_settings(db: Database) -> Settings:
    return Settings(
        api_key=API_KEY,
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token=AUTH_TOKEN,
        telephony_api_url="http://127.0.0.1:9",
        public_base_url=PUBLIC_URL,
        database_url=db.url,
    )


@pytest.fixture
def client(
    db: Database, api_settings: Settings, temporal: RecordingTemporal
) -> Iterator[TestClient]:
    async def connect() -> RecordingTemporal:
        return temporal

    app = create_app(api_settings, db=db, temporal=connect)  # type: ignore[arg-type]
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client
