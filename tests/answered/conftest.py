"""An API on a test database (see tests/api/conftest.py) and an agent in it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.answered.helpers import Agent, create_agent
from tests.api.conftest import (  # noqa: F401  (fixtures these tests use)
    api_settings,
    client,
    temporal,
)

PURPOSE = "Remind {{first_name}} of the {{plan}} plan."


@pytest.fixture
def agent(client: TestClient) -> Agent:  # noqa: F811
    return create_agent(client, purpose=PURPOSE)
