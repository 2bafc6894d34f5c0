"""The engine under provider faults: slow creates, lost callbacks, pauses."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from store.models import CallAttempt, utcnow
from telephony.scenario import Scenario
from telephony.simulator import Faults
from tests.conftest import eventually
from tests.engine import open_numbers, running_engine


def attempts(db) -> list[CallAttempt]:
    with db.session() as session:
        return list(session.exec(select(CallAttempt).order_by(CallAttempt.id)).all())


async def test_slow_create_makes_one_call(dev_env, sqlite_db):
    numbers = open_numbers(3)
    scenario = Scenario(numbers={n: ("human",) for n in numbers}, time_scale=0.001)
    # The simulator creates the call at once but answers after 3 s, past the
    # provider client's 1 s timeout, so the activity fails and is retried.
    faults = Faults(create_delay_seconds=3.0)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, faults=faults, provider_timeout=1.0
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(report["import_id"])
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)
        creates = engine.simulator.stats()["creates_by_number"]

    assert creates == {n: 1 for n in numbers}
    assert [a.attempt_no for a in attempts(sqlite_db)] == [1, 1, 1]
    assert campaign["calls_by_outcome"] == {"answered": 3}


async def test_lost_final_callback_asks_provider(dev_env, sqlite_db):
    numbers = open_numbers(2)
    scenario = Scenario(
        numbers={n: ("busy", "human") for n in numbers},
        ring_seconds={"human": 2, "busy": 1},
        time_scale=0.001,
    )
    faults = Faults(drop_final_callback=1.0)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, faults=faults
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        # The ring timeout sets how long the workflow waits before asking.
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=1, ring_timeout_seconds=5
        )
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)

    assert campaign["calls_by_outcome"] == {"busy": 2, "answered": 2}
    assert campaign["members_by_state"] == {"answered": 2}


async def test_duplicate_and_reordered_callbacks(dev_env, sqlite_db):
    numbers = open_numbers(6)
    scenario = Scenario(
        numbers={n: ("no-answer", "machine", "human") for n in numbers},
        time_scale=0.001,
    )
    faults = Faults(duplicate_callbacks=0.5, reorder_callbacks=0.5)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, faults=faults
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=1
        )
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)

    assert campaign["calls_by_outcome"] == {
        "no_answer": 6,
        "voicemail": 6,
        "answered": 6,
    }
    assert len(attempts(sqlite_db)) == 18


async def test_rate_limited_creates_use_no_attempt(dev_env, sqlite_db):
    numbers = open_numbers(4)
    scenario = Scenario(
        numbers={n: ("no-answer", "human") for n in numbers}, time_scale=0.001
    )
    faults = Faults(rate_limit_429_count=6)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, faults=faults
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=1, max_attempts=2
        )
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)

    assert campaign["members_by_state"] == {"answered": 4}
    assert sorted(a.attempt_no for a in attempts(sqlite_db)) == [1, 1, 1, 1, 2, 2, 2, 2]


async def test_pause_holds_every_dial(dev_env, sqlite_db):
    numbers = open_numbers(5)
    scenario = Scenario(
        numbers={n: ("no-answer", "no-answer", "human") for n in numbers},
        time_scale=0.001,
    )

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, record_as="pause"
    ) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=2
        )
        await eventually(
            lambda: sum(engine.simulator.stats()["creates_by_number"].values()) >= 1
        )
        paused = await engine.api.post(f"/campaigns/{campaign_id}/pause")
        paused_at = utcnow()
        # Retries fall due 2 s after each first attempt; waiting well past
        # that shows that none of them is dialled while paused.
        await asyncio.sleep(6)
        resumed_at = utcnow()
        during_pause = [
            a
            for a in attempts(sqlite_db)
            if paused_at <= _aware(a.created_at) < resumed_at
        ]
        await engine.api.post(f"/campaigns/{campaign_id}/resume")
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)

    assert paused.json()["status"] == "paused"
    assert during_pause == []
    assert campaign["members_by_state"] == {"answered": 5}
    assert len(attempts(sqlite_db)) == 15


def _aware(value):
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_cancel_ends_every_open_member(dev_env, sqlite_db):
    numbers = open_numbers(4)
    scenario = Scenario(numbers={n: ("no-answer",) for n in numbers}, time_scale=0.001)

    async with running_engine(dev_env, sqlite_db, scenario=scenario) as engine:
        report = await engine.import_csv([{"phone": n} for n in numbers])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=3600
        )
        await eventually(
            lambda: _all_waiting(engine, campaign_id, len(numbers)), timeout=60
        )
        await engine.api.post(f"/campaigns/{campaign_id}/cancel")
        campaign = await eventually(
            lambda: _all_canceled(engine, campaign_id, len(numbers)), timeout=60
        )

    assert campaign["status"] == "canceled"
    assert campaign["calls_placed"] == len(numbers)


async def _all_waiting(engine, campaign_id: int, count: int) -> bool:
    campaign = await engine.campaign(campaign_id)
    return campaign["members_by_state"] == {"waiting": count}


async def _all_canceled(engine, campaign_id: int, count: int):
    campaign = await engine.campaign(campaign_id)
    return campaign if campaign["members_by_state"] == {"canceled": count} else None
