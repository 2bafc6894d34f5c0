"""The do-not-call list end to end: listed numbers are never dialled again."""

from __future__ import annotations

from telephony.scenario import Scenario
from tests.conftest import eventually
from tests.engine import open_numbers, running_engine


async def member_states(engine, campaign_id: int) -> dict[str, int]:
    return (await engine.campaign(campaign_id))["members_by_state"]


async def test_listed_while_waiting_never_redialled(dev_env, sqlite_db):
    waiting, other = open_numbers(2)
    scenario = Scenario(
        numbers={waiting: ("no-answer",), other: ("human",)}, time_scale=0.001
    )

    async with running_engine(dev_env, sqlite_db, scenario=scenario) as engine:
        report = await engine.import_csv([{"phone": waiting}, {"phone": other}])
        # A long retry delay keeps the first contact asleep before attempt 2.
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=3600
        )
        await eventually(lambda: _waiting_for_retry(engine, campaign_id), timeout=60)
        added = await engine.api.post("/do-not-call", json={"phone": waiting})
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=60)
        creates = engine.simulator.stats()["creates_by_number"]

    assert added.json()["contacts_stopped"] == 1
    assert campaign["members_by_state"] == {"do_not_call": 1, "answered": 1}
    assert creates == {waiting: 1, other: 1}


async def test_listed_before_start_never_dialled(dev_env, sqlite_db):
    listed, other = open_numbers(2)
    scenario = Scenario(
        numbers={listed: ("human",), other: ("human",)}, time_scale=0.001
    )

    async with running_engine(dev_env, sqlite_db, scenario=scenario) as engine:
        await engine.api.post("/do-not-call", json={"phone": listed})
        report = await engine.import_csv([{"phone": listed}, {"phone": other}])
        campaign_id = await engine.start_campaign(report["import_id"])
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=60)
        creates = engine.simulator.stats()["creates_by_number"]

    assert campaign["members_by_state"] == {"do_not_call": 1, "answered": 1}
    assert campaign["not_called_by_reason"] == {"number is on the do-not-call list": 1}
    assert creates == {other: 1}


async def test_reimport_keeps_number_listed(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    scenario = Scenario(numbers={number: ("human",)}, time_scale=0.001)

    async with running_engine(dev_env, sqlite_db, scenario=scenario) as engine:
        await engine.import_csv([{"phone": number}])
        await engine.api.post("/do-not-call", json={"phone": number})
        report = await engine.import_csv([{"phone": number, "name": "again"}])
        listing = (await engine.api.get("/do-not-call")).json()
        campaign_id = await engine.start_campaign(report["import_id"])
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=60)

    assert [item["phone"] for item in listing["items"]] == [number]
    assert campaign["members_by_state"] == {"do_not_call": 1}


async def _waiting_for_retry(engine, campaign_id: int) -> bool:
    campaign = await engine.campaign(campaign_id)
    return campaign["calls_by_outcome"].get("no_answer") == 1 and (
        campaign["members_by_state"].get("waiting") == 1
    )
