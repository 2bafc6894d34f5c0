"""Import contacts, start a campaign through the API and time it to the end."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from activities.types import FINAL_MEMBER_STATES
from bench.numbers import WIDE_WINDOW, contacts_csv
from bench.stack import EngineProcesses
from contacts.store import import_contacts
from store.db import Database
from store.models import Campaign, CampaignMember, CampaignStatus

AGENT_NUMBER = "+12025550100"
POLL_SECONDS = 0.25
PROGRESS_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class CampaignRun:
    """One campaign timed from its start request until it is finished."""

    campaign_id: int
    members: int
    # From the start request until the API shows the campaign finished.
    seconds: float
    workflow_id: str


async def import_numbers(db: Database, numbers: list[str]) -> int:
    """Import the numbers as contacts; return the import's id."""
    data = contacts_csv(numbers)
    report = await asyncio.to_thread(
        import_contacts, db, io.BytesIO(data), filename="bench.csv"
    )
    if report.rejected:
        first = report.rejected[0]
        raise RuntimeError(
            f"{len(report.rejected)} generated rows were rejected, the first "
            f"(row {first.row}) because: {first.reason}"
        )
    return report.import_id


async def create_campaign(
    api: httpx.AsyncClient, import_id: int, settings: dict[str, Any]
) -> int:
    """Create an agent and a campaign of the imported contacts, in draft."""
    agent = await api.post(
        "/agents",
        json={
            "name": "Benchmark agent",
            "from_number": AGENT_NUMBER,
            "voice_url": "http://127.0.0.1/agent/voice",
        },
    )
    agent.raise_for_status()
    body = {
        "name": "benchmark",
        "agent_id": agent.json()["id"],
        "contacts": {"import_id": import_id},
        "settings": {**WIDE_WINDOW, "require_consent": False, **settings},
    }
    response = await api.post("/campaigns", json=body)
    response.raise_for_status()
    return response.json()["id"]


@dataclass(frozen=True)
class StartedCampaign:
    campaign_id: int
    workflow_id: str
    # time.monotonic() when the start request was sent.
    started: float


async def start_campaign(
    engine: EngineProcesses,
    numbers: list[str],
    settings: dict[str, Any] | None = None,
) -> StartedCampaign:
    """Import the numbers, then create and start a campaign of them."""
    import_id = await import_numbers(engine.db, numbers)
    async with httpx.AsyncClient(
        base_url=engine.api_url, headers={"X-API-Key": engine.api_key}, timeout=60
    ) as api:
        campaign_id = await create_campaign(api, import_id, settings or {})
        started = time.monotonic()
        response = await api.post(f"/campaigns/{campaign_id}/start")
        response.raise_for_status()
    return StartedCampaign(campaign_id, response.json()["workflow_id"], started)


async def run_campaign(
    engine: EngineProcesses,
    numbers: list[str],
    *,
    timeout: float,
    settings: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> CampaignRun:
    """Start a campaign of the numbers and wait until it is finished.

    Raises:
        TimeoutError: the campaign did not finish within ``timeout`` seconds.
    """
    started = await start_campaign(engine, numbers, settings)
    await wait_finished(
        engine, started.campaign_id, started.started + timeout, on_progress
    )
    return CampaignRun(
        campaign_id=started.campaign_id,
        members=len(numbers),
        seconds=time.monotonic() - started.started,
        workflow_id=started.workflow_id,
    )


async def wait_finished(
    engine: EngineProcesses,
    campaign_id: int,
    deadline: float,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Poll the database until the campaign's status is finished.

    Raises:
        TimeoutError: the deadline passed first.
        RuntimeError: one of the engine's processes ended.
    """
    db = engine.db
    next_report = time.monotonic() + PROGRESS_EVERY_SECONDS
    while True:
        engine.check_running()
        status = await asyncio.to_thread(_status, db, campaign_id)
        if status == CampaignStatus.FINISHED:
            return
        now = time.monotonic()
        if now > deadline:
            final, members = await asyncio.to_thread(final_members, db, campaign_id)
            raise TimeoutError(
                f"campaign {campaign_id} is still {status}: {final} of {members} "
                "members final when the time ran out"
            )
        if on_progress is not None and now >= next_report:
            next_report = now + PROGRESS_EVERY_SECONDS
            on_progress(*await asyncio.to_thread(final_members, db, campaign_id))
        await asyncio.sleep(POLL_SECONDS)


def _status(db: Database, campaign_id: int) -> str:
    with db.read_session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def final_members(db: Database, campaign_id: int) -> tuple[int, int]:
    """Return how many members are final, and how many there are."""
    with db.read_session() as session:
        rows = session.exec(
            select(CampaignMember.state, func.count())
            .where(CampaignMember.campaign_id == campaign_id)
            .group_by(CampaignMember.state)
        ).all()
    final = sum(count for state, count in rows if state in FINAL_MEMBER_STATES)
    return final, sum(count for _, count in rows)


def print_progress(final: int, members: int) -> None:
    print(f"  ... {final} of {members} contacts final", flush=True)
