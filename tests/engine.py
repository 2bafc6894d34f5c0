"""The whole engine in one test process: API, worker, simulator, real Temporal.

The API and the simulator serve on free local ports in threads; the worker
runs on the test's event loop against Temporal's dev server. Callbacks travel
from the simulator over HTTP to the API's real webhook.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from store.db import Database
from store.models import utcnow
from telephony.scenario import Scenario
from telephony.simulator import CONTROL_PREFIX, Faults, SimulatorConfig
from telephony.testing import SimulatorServer, serve_in_thread
from worker import build_worker

API_KEY = "test-api-key"
AGENT_NUMBER = "+12025550100"

# Numbers in places spread around the world, each in a single time zone, so
# that a test can pick those inside the calling window whatever the hour.
# They are fictional (555-01xx in North America) or the example numbers of
# their country's numbering plan.
NUMBER_POOL: tuple[tuple[str, str], ...] = (
    ("+1202555{:04d}", "America/New_York"),
    ("+1312555{:04d}", "America/Chicago"),
    ("+1303555{:04d}", "America/Denver"),
    ("+1213555{:04d}", "America/Los_Angeles"),
    ("+1808555{:04d}", "Pacific/Honolulu"),
    ("+4420794{:05d}", "Europe/London"),
    ("+4930901{:05d}", "Europe/Berlin"),
    ("+81312{:06d}", "Asia/Tokyo"),
    ("+61255{:06d}", "Australia/Sydney"),
    ("+919{:09d}", "Asia/Kolkata"),
)
# Federal limits and every day, so that some zone is always open.
WIDE_WINDOW = {
    "window_start": "08:00",
    "window_end": "21:00",
    "window_days": [1, 2, 3, 4, 5, 6, 7],
}


@dataclass
class Engine:
    api: httpx.AsyncClient
    simulator: SimulatorServer
    db: Database
    settings: Settings
    # Whether the simulator plays the agent of the agents this engine creates.
    plays_agent: bool = False

    async def import_csv(
        self, rows: list[dict[str, str]], **form: str
    ) -> dict[str, Any]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        response = await self.api.post(
            "/contacts/import",
            files={"file": ("contacts.csv", buffer.getvalue().encode(), "text/csv")},
            data=form,
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def create_agent(self, *, purpose: str = "") -> int:
        response = await self.api.post(
            "/agents",
            json={
                "name": "Test agent",
                "from_number": AGENT_NUMBER,
                "voice_url": f"{self.simulator.url}/agent/voice",
                "purpose": purpose,
            },
        )
        assert response.status_code == 201, response.text
        if self.plays_agent:
            await self._play_agent(response.json()["token"])
        return response.json()["id"]

    async def _play_agent(self, token: str) -> None:
        # The simulator plays one agent at a time: the one created last.
        role = {"engine_url": self.settings.public_base_url, "token": token}
        async with httpx.AsyncClient(trust_env=False) as control:
            url = f"{self.simulator.url}{CONTROL_PREFIX}/agent"
            response = await control.put(url, json=role)
        assert response.status_code == 200, response.text

    async def start_campaign(
        self, import_id: int, *, agent_id: int | None = None, **settings: Any
    ) -> int:
        if agent_id is None:
            agent_id = await self.create_agent()
        body = {
            "name": "test campaign",
            "agent_id": agent_id,
            "contacts": {"import_id": import_id},
            "settings": {**WIDE_WINDOW, "require_consent": False, **settings},
        }
        response = await self.api.post("/campaigns", json=body)
        assert response.status_code == 201, response.text
        campaign_id = response.json()["id"]
        response = await self.api.post(f"/campaigns/{campaign_id}/start")
        assert response.status_code == 200, response.text
        return campaign_id

    async def campaign(self, campaign_id: int) -> dict[str, Any]:
        response = await self.api.get(f"/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def finished(self, campaign_id: int) -> dict[str, Any] | None:
        campaign = await self.campaign(campaign_id)
        return campaign if campaign["status"] == "finished" else None


def open_numbers(
    count: int, *, now: datetime | None = None, start: int = 200
) -> list[str]:
    """Return ``count`` numbers whose zone is inside 08:00–21:00 for an hour."""
    now = now or datetime.now(UTC)
    open_templates = []
    for template, zone in NUMBER_POOL:
        zone_info = ZoneInfo(zone)
        if all(
            8 <= (now + timedelta(minutes=m)).astimezone(zone_info).hour < 21
            for m in (0, 60)
        ):
            open_templates.append(template)
    assert open_templates, f"no zone of the pool is open at {now}"
    return [
        open_templates[i % len(open_templates)].format(start + i) for i in range(count)
    ]


@asynccontextmanager
async def running_engine(
    env: WorkflowEnvironment,
    db: Database,
    *,
    scenario: Scenario,
    faults: Faults | None = None,
    plan_line_limit: int = 10,
    calls_per_second: float = 100.0,
    clock: Callable[[], datetime] = utcnow,
    provider_timeout: float = 5.0,
    record_as: str | None = None,
    play_agent: bool = False,
    in_process_worker: bool = True,
) -> AsyncIterator[Engine]:
    """Run the whole engine; ``record_as`` names the histories to record.

    With ``play_agent`` the simulator also plays the voice agent. Without
    ``in_process_worker`` no worker runs here, so that a test can run worker
    processes of its own with ``Engine.settings``.
    """
    config = SimulatorConfig(scenario=scenario, faults=faults or Faults())
    with (
        SimulatorServer(config) as simulator,
        _api(env, db, simulator) as (api_url, settings),
    ):
        settings = settings.model_copy(
            update={
                "public_base_url": api_url,
                "plan_line_limit": plan_line_limit,
                "calls_per_second": calls_per_second,
            }
        )
        provider = simulator.provider(timeout_seconds=provider_timeout)
        with ThreadPoolExecutor(max_workers=100) as executor:
            worker = (
                build_worker(
                    env.client,
                    settings,
                    db,
                    provider,
                    executor,
                    clock=clock,
                    sandboxed=True,
                )
                if in_process_worker
                else nullcontext()
            )
            async with (
                worker,
                httpx.AsyncClient(
                    base_url=api_url, headers={"X-API-Key": API_KEY}, timeout=30
                ) as api,
            ):
                yield Engine(
                    api=api,
                    simulator=simulator,
                    db=db,
                    settings=settings,
                    plays_agent=play_agent,
                )
                if record_as:
                    await record_histories(env, settings.workflow_id_prefix, record_as)


@contextmanager
def _api(
    env: WorkflowEnvironment, db: Database, simulator: SimulatorServer
) -> Iterator[tuple[str, Settings]]:
    settings = Settings(
        api_key=API_KEY,
        twilio_account_sid=simulator.config.account_sid,
        twilio_auth_token=simulator.config.auth_token,
        telephony_api_url=simulator.url,
        task_queue=f"test-{uuid.uuid4().hex[:12]}",
        # Every test's database numbers campaigns from 1, and they share one
        # Temporal server.
        workflow_id_prefix=f"t{uuid.uuid4().hex[:8]}-",
        database_url=db.url,
    )

    async def temporal():
        return env.client

    app = create_app(settings, db=db, temporal=temporal)
    with serve_in_thread(app, name="api") as url:
        # The webhook checks signatures against the public URL, known only
        # once the server has its port.
        settings = settings.model_copy(update={"public_base_url": url})
        app.state.settings = settings
        yield url, settings


HISTORY_DIR = Path(__file__).parent / "histories"
RECORD_VARIABLE = "OUTBOUND_RECORD_HISTORIES"
# Enough contacts to cover every path without a large file per test.
MAX_RECORDED_CONTACTS = 6


async def record_histories(env: WorkflowEnvironment, prefix: str, name: str) -> None:
    """Save this test's workflow histories for the replay test, when asked.

    Set OUTBOUND_RECORD_HISTORIES=1 and run the tests to record them again
    after a deliberate change to a workflow.
    """
    if not os.environ.get(RECORD_VARIABLE):
        return
    HISTORY_DIR.mkdir(exist_ok=True)
    query = f'WorkflowId STARTS_WITH "{prefix}"'
    ids = sorted([w.id async for w in env.client.list_workflows(query)])
    campaigns = [i for i in ids if "/" not in i]
    contacts = [i for i in ids if "/" in i][:MAX_RECORDED_CONTACTS]
    for index, workflow_id in enumerate(campaigns + contacts):
        history = await env.client.get_workflow_handle(workflow_id).fetch_history()
        # The workflow id is kept, because children's ids derive from it.
        record = {"workflow_id": workflow_id, "history": history.to_json_dict()}
        (HISTORY_DIR / f"{name}-{index:02d}.json").write_text(json.dumps(record))
