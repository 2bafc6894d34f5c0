"""A campaign across continue-as-new: a pause holds, every contact starts once.

Runs change when a run has started its share of contacts (``starts_per_run``)
and when Temporal suggests it, which a dev server with a low
``limit.historyCount.suggestContinueAsNew`` does after a few hundred events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from activities.settings import settings_from_dict
from activities.types import CampaignInput, CampaignProgress
from store.db import Database
from store.models import CallAttempt, Campaign, CampaignMember, utcnow
from telephony.scenario import Scenario
from tests.conftest import BIN_DIR, eventually
from tests.engine import WIDE_WINDOW, Engine, open_numbers, running_engine
from tests.scale import campaign_runs, contact_workflow_runs
from workflows import names
from workflows.campaign import CampaignWorkflow

CONTACTS = 50
STARTS_PER_RUN = 10
# Enough that the first suggested run change comes well before the last start.
SUGGESTED_CONTACTS = 80
# The campaign checks Temporal's suggestion only while it cannot start more
# contacts, so few lines and calls that last keep its contacts in flight full.
SUGGESTED_TALK_SECONDS = 0.5
SUGGESTED_LINES = 3
# Far below the server's default (4,096 events), so that Temporal suggests
# continue-as-new several times during a campaign of a few dozen contacts.
SUGGEST_AFTER_EVENTS = 200


@pytest.fixture(scope="module")
async def suggesting_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=names.SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    yield env
    await env.shutdown()


def answering(numbers: list[str], talk_seconds: float = 0.0) -> Scenario:
    """Every call answered at once and talking for ``talk_seconds``."""
    return Scenario(
        numbers={n: ("human",) for n in numbers},
        ring_seconds={"human": 0.0},
        talk_seconds={"human": talk_seconds},
        time_scale=1.0,
    )


async def create_campaign(engine: Engine, numbers: list[str]) -> int:
    """Create a campaign of the numbers in draft, without starting it."""
    report = await engine.import_csv([{"phone": n} for n in numbers])
    body = {
        "name": "continue-as-new",
        "agent_id": await engine.create_agent(),
        "contacts": {"import_id": report["import_id"]},
        "settings": {**WIDE_WINDOW, "require_consent": False},
    }
    response = await engine.api.post("/campaigns", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def start_in_small_runs(engine: Engine, client: Client, campaign_id: int) -> str:
    """Start the campaign's workflow with STARTS_PER_RUN, as the API would."""
    with engine.db.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
    workflow_id = names.campaign_workflow_id(
        campaign_id, engine.settings.workflow_id_prefix
    )
    await client.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(
            campaign_id=campaign_id,
            settings=settings_from_dict(campaign.settings),
            starts_per_run=STARTS_PER_RUN,
        ),
        id=workflow_id,
        task_queue=engine.settings.task_queue,
        search_attributes=names.campaign_search_attributes(campaign_id),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    # Marks the campaign running; the workflow started above is kept.
    response = await engine.api.post(f"/campaigns/{campaign_id}/start")
    assert response.status_code == 200, response.text
    return workflow_id


async def pause_at_next_run(
    engine: Engine, client: Client, campaign_id: int
) -> datetime:
    """Send a pause as soon as the campaign's first run has handed over."""
    workflow_id = (await engine.campaign(campaign_id))["workflow_id"]
    handle = client.get_workflow_handle(workflow_id)
    first_run = (await handle.describe()).run_id
    await eventually(lambda: _run_changed(handle, first_run), timeout=60, interval=0.01)
    response = await engine.api.post(f"/campaigns/{campaign_id}/pause")
    assert response.status_code == 200, response.text
    return utcnow()


async def quiet_while_paused(
    client: Client, db: Database, workflow_id: str
) -> CampaignProgress:
    """Wait until the paused campaign has no contact in flight; return its state.

    Every contact started so far has then finished, or found the campaign
    paused and signalled that it is idle. A started member leaves ``pending``
    at its first check before a dial.
    """
    handle = client.get_workflow_handle(workflow_id)

    async def quiet() -> CampaignProgress | None:
        progress = await handle.query(CampaignWorkflow.progress)
        settled = pending_members(db) == member_count(db) - progress.started
        if progress.paused and progress.active == 0 and settled:
            return progress
        return None

    return await eventually(quiet, timeout=120)


def pending_members(db: Database) -> int:
    with db.session() as session:
        states = session.exec(select(CampaignMember.state)).all()
    return states.count("pending")


def member_count(db: Database) -> int:
    with db.session() as session:
        return len(session.exec(select(CampaignMember.id)).all())


def dials_between(db: Database, start: datetime, end: datetime) -> list[int]:
    with db.session() as session:
        attempts = session.exec(select(CallAttempt)).all()
    return [a.id for a in attempts if start <= _aware(a.created_at) < end]


def expected_contact_ids(db: Database, campaign_workflow_id: str) -> list[str]:
    with db.session() as session:
        contact_ids = session.exec(select(CampaignMember.contact_id)).all()
    return sorted(
        names.contact_workflow_id(campaign_workflow_id, c) for c in contact_ids
    )


async def finish_after_resume(
    engine: Engine, client: Client, campaign_id: int, paused_at: datetime
) -> tuple[CampaignProgress, list[int], dict]:
    """Let the pause settle, resume, and wait for the campaign to finish."""
    workflow_id = (await engine.campaign(campaign_id))["workflow_id"]
    quiet = await quiet_while_paused(client, engine.db, workflow_id)
    during_pause = dials_between(engine.db, paused_at, utcnow())
    await engine.api.post(f"/campaigns/{campaign_id}/resume")
    campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)
    return quiet, during_pause, campaign


async def all_contact_runs(
    client: Client, workflow_id: str, expected: int
) -> Counter[str]:
    """The contact workflows of a campaign, once visibility lists them all."""

    async def listed() -> Counter[str] | None:
        runs = await contact_workflow_runs(client, workflow_id)
        return runs if sum(runs.values()) >= expected else None

    return await eventually(listed, timeout=30)


async def test_small_runs_start_each_contact_once(dev_env, sqlite_db):
    numbers = open_numbers(CONTACTS)

    async with running_engine(
        dev_env, sqlite_db, scenario=answering(numbers)
    ) as engine:
        campaign_id = await create_campaign(engine, numbers)
        workflow_id = await start_in_small_runs(engine, dev_env.client, campaign_id)
        paused_at = await pause_at_next_run(engine, dev_env.client, campaign_id)
        quiet, during_pause, campaign = await finish_after_resume(
            engine, dev_env.client, campaign_id, paused_at
        )
        runs = await all_contact_runs(dev_env.client, workflow_id, CONTACTS)
        campaign_run_count = await campaign_runs(dev_env.client, workflow_id)

    assert quiet.started < CONTACTS
    assert during_pause == []
    assert campaign["members_by_state"] == {"answered": CONTACTS}
    assert sorted(runs) == expected_contact_ids(sqlite_db, workflow_id)
    assert set(runs.values()) == {1}
    assert campaign_run_count >= CONTACTS // STARTS_PER_RUN


async def test_suggested_runs_start_each_contact_once(suggesting_env, sqlite_db):
    numbers = open_numbers(SUGGESTED_CONTACTS)
    client = suggesting_env.client

    scenario = answering(numbers, SUGGESTED_TALK_SECONDS)

    async with running_engine(
        suggesting_env, sqlite_db, scenario=scenario, plan_line_limit=SUGGESTED_LINES
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(report["import_id"])
        workflow_id = (await engine.campaign(campaign_id))["workflow_id"]
        paused_at = await pause_at_next_run(engine, client, campaign_id)
        quiet, during_pause, campaign = await finish_after_resume(
            engine, client, campaign_id, paused_at
        )
        runs = await all_contact_runs(client, workflow_id, SUGGESTED_CONTACTS)
        campaign_run_count = await campaign_runs(client, workflow_id)

    assert quiet.started < SUGGESTED_CONTACTS
    assert during_pause == []
    assert campaign["members_by_state"] == {"answered": SUGGESTED_CONTACTS}
    assert sorted(runs) == expected_contact_ids(sqlite_db, workflow_id)
    assert set(runs.values()) == {1}
    assert campaign_run_count > 1


async def _run_changed(handle: WorkflowHandle, first_run: str) -> bool:
    return (await handle.describe()).run_id != first_run


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; they are UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
