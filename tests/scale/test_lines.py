"""The plan's lines across worker processes, crashes, pauses and 429 storms."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from store.db import Database
from store.models import CallAttempt, CampaignMember
from telephony.scenario import Scenario
from telephony.simulator import Faults
from tests.conftest import eventually
from tests.engine import Engine, open_numbers, running_engine
from tests.scale import (
    WorkerProcess,
    activity_pollers,
    leases_by_campaign,
    worker_environment,
)

LINES = 3
# Long enough that calls overlap and lines stay taken for a while.
TALK_SECONDS = 1.5
# The shortest lease the settings allow, so that a vanished holder's line
# comes back within the test.
LEASE_SECONDS = "5"


def talking(numbers: list[str], talk_seconds: float = TALK_SECONDS) -> Scenario:
    """Every call answered at once and talking for ``talk_seconds``."""
    return Scenario(
        numbers={n: ("human",) for n in numbers},
        ring_seconds={"human": 0.0},
        talk_seconds={"human": talk_seconds},
        time_scale=1.0,
    )


def attempts_by_number(db: Database) -> Counter[str]:
    with db.session() as session:
        return Counter(session.exec(select(CallAttempt.phone)).all())


def member_attempts(db: Database) -> list[int]:
    with db.session() as session:
        return list(session.exec(select(CampaignMember.attempts_made)).all())


def worker(
    engine: Engine, dev_env: WorkflowEnvironment, tmp_path: Path, name: str
) -> WorkerProcess:
    address = dev_env.client.service_client.config.target_host
    env = worker_environment(
        engine,
        address,
        plan_line_limit=str(LINES),
        line_lease_seconds=LEASE_SECONDS,
    )
    return WorkerProcess(env, tmp_path / f"{name}.log")


async def start_campaigns(engine: Engine, groups: list[list[str]]) -> list[int]:
    ids = []
    for numbers in groups:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        ids.append(await engine.start_campaign(report["import_id"]))
    return ids


async def test_two_workers_share_line_limit(dev_env, db, tmp_path):
    numbers = open_numbers(16)
    first, second = numbers[:8], numbers[8:]

    async with running_engine(
        dev_env, db, scenario=talking(numbers), in_process_worker=False
    ) as engine:
        with (
            worker(engine, dev_env, tmp_path, "worker-a"),
            worker(engine, dev_env, tmp_path, "worker-b"),
        ):
            task_queue = engine.settings.task_queue
            await eventually(
                lambda: _pollers_at_least(dev_env, task_queue, 2), timeout=60
            )
            ids = await start_campaigns(engine, [first, second])
            done = [
                await eventually(lambda c=c: engine.finished(c), timeout=90)
                for c in ids
            ]
        stats = engine.simulator.stats()

    assert stats["max_live_calls"] == LINES
    assert [c["members_by_state"] for c in done] == [{"answered": 8}] * 2
    assert stats["creates_by_number"] == {n: 1 for n in numbers}


# NOTE: the kill lands wherever the worker is. When it falls between taking a
# line and creating the call, the attempt is resumed on the other worker after
# the lease has expired, which is the case the live-call check below guards.
async def test_killed_worker_lines_come_back(dev_env, sqlite_db, tmp_path):
    numbers = open_numbers(6)
    scenario = talking(numbers, talk_seconds=3.0)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, in_process_worker=False
    ) as engine:
        with worker(engine, dev_env, tmp_path, "doomed") as doomed:
            (campaign_id,) = await start_campaigns(engine, [numbers])
            await eventually(
                lambda: sum(leases_by_campaign(sqlite_db).values()) == LINES,
                timeout=60,
            )
            doomed.kill()
        with worker(engine, dev_env, tmp_path, "survivor"):
            campaign = await eventually(
                lambda: engine.finished(campaign_id), timeout=100
            )
            leases = leases_by_campaign(sqlite_db)
        stats = engine.simulator.stats()

    assert campaign["members_by_state"] == {"answered": 6}
    assert leases == {}
    assert stats["max_live_calls"] <= LINES
    assert stats["creates_by_number"] == {n: 1 for n in numbers}


async def test_pause_hands_lines_to_other_campaign(dev_env, sqlite_db):
    numbers = open_numbers(80)
    lines = 4

    async with running_engine(
        dev_env, sqlite_db, scenario=talking(numbers, 2.0), plan_line_limit=lines
    ) as engine:
        first, second = await start_campaigns(engine, [numbers[:40], numbers[40:]])
        shared = {first: 2, second: 2}
        await eventually(lambda: leases_by_campaign(sqlite_db) == shared, timeout=30)
        await engine.api.post(f"/campaigns/{first}/pause")
        await eventually(
            lambda: leases_by_campaign(sqlite_db) == {second: lines}, timeout=30
        )
        await engine.api.post(f"/campaigns/{first}/resume")
        await eventually(lambda: leases_by_campaign(sqlite_db) == shared, timeout=30)
        # While both want lines, neither takes more than its half.
        samples = await lease_changes(sqlite_db, 12)
        for campaign_id in (first, second):
            await engine.api.post(f"/campaigns/{campaign_id}/cancel")
        await eventually(lambda: _all_idle(sqlite_db), timeout=60)

    assert max(max(sample.values(), default=0) for sample in samples) == 2


async def test_rate_limit_storm_uses_no_attempts(dev_env, sqlite_db):
    numbers = open_numbers(4)
    scenario = Scenario(
        numbers={n: ("no-answer", "human") for n in numbers}, time_scale=0.001
    )
    faults = Faults(rate_limit_429_probability=0.5)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, faults=faults
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=1, max_attempts=2
        )
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=110)
        stats = engine.simulator.stats()

    assert stats["rate_limited"] > 0
    assert attempts_by_number(sqlite_db) == Counter(stats["creates_by_number"])
    assert campaign["members_by_state"] == {"answered": 4}
    assert member_attempts(sqlite_db) == [2, 2, 2, 2]


async def _pollers_at_least(
    dev_env: WorkflowEnvironment, task_queue: str, count: int
) -> bool:
    return await activity_pollers(dev_env.client, task_queue) >= count


async def lease_changes(db: Database, count: int) -> list[dict[int, int]]:
    """The leases by campaign at each of the next ``count`` changes."""
    seen = [leases_by_campaign(db)]
    for _ in range(count):
        (changed,) = await eventually(lambda: _changed(db, seen[-1]), timeout=30)
        seen.append(changed)
    return seen


def _changed(db: Database, last: dict[int, int]) -> tuple[dict[int, int]] | None:
    current = leases_by_campaign(db)
    return (current,) if current != last else None


def _all_idle(db: Database) -> bool:
    return leases_by_campaign(db) == {}
