"""Answered calls end to end, with the simulator playing the agent."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import select

from activities.types import Outcome
from store.db import Database
from store.models import CallAttempt, DoNotCall
from store.reports import CallReport
from telephony.scenario import AgentResult, Scenario
from tests.conftest import eventually
from tests.engine import Engine, open_numbers, running_engine

PURPOSE = "Call {{first_name}} about the renewal."
MESSAGE = "This is Acme about your renewal. Please call us back."


def outcomes_by_number(db: Database) -> dict[str, list[str | None]]:
    with db.session() as session:
        attempts = session.exec(select(CallAttempt).order_by(CallAttempt.id)).all()
    recorded: dict[str, list[str | None]] = {}
    for attempt in attempts:
        recorded.setdefault(attempt.phone, []).append(attempt.outcome)
    return recorded


def reports(db: Database) -> list[CallReport]:
    with db.session() as session:
        rows = session.exec(select(CallReport).order_by(CallReport.attempt_id)).all()
    return [row for row in rows if row.reported_at and row.recording_sid]


async def inbox(engine: Engine, **params: Any) -> list[dict[str, Any]]:
    response = await engine.api.get("/inbox", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def run_campaign(
    engine: Engine, numbers: list[str], *, purpose: str = PURPOSE, **settings: Any
) -> dict[str, Any]:
    imported = await engine.import_csv(
        [{"phone": number, "first_name": f"P{i}"} for i, number in enumerate(numbers)]
    )
    agent_id = await engine.create_agent(purpose=purpose)
    campaign_id = await engine.start_campaign(
        imported["import_id"], agent_id=agent_id, retry_delay_seconds=1, **settings
    )
    return await eventually(lambda: engine.finished(campaign_id), timeout=120)


async def test_mixed_answers_fill_inbox_and_usage(dev_env, sqlite_db):
    person, machine_then_person, fax, missed_then_person, machine = open_numbers(5)
    scenario = Scenario(
        numbers={
            person: ("human",),
            machine_then_person: ("machine", "human"),
            fax: ("fax",),
            missed_then_person: ("no-answer", "human"),
            machine: ("machine",),
        },
        agent_results={person: AgentResult(labels=("interested",))},
        time_scale=0.001,
    )

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        campaign = await run_campaign(
            engine, [person, machine_then_person, fax, missed_then_person, machine]
        )
        # Reports and recordings follow the end of each call.
        await eventually(lambda: len(reports(sqlite_db)) == 3, timeout=30)
        entries = await inbox(engine)
        usage = (await engine.api.get("/usage")).json()
        creates = engine.simulator.stats()["creates_by_number"]

    assert outcomes_by_number(sqlite_db) == {
        person: [Outcome.ANSWERED],
        machine_then_person: [Outcome.VOICEMAIL, Outcome.ANSWERED],
        fax: [Outcome.FAX],
        missed_then_person: [Outcome.NO_ANSWER, Outcome.ANSWERED],
        machine: [Outcome.VOICEMAIL] * 3,
    }
    assert creates == {
        person: 1,
        machine_then_person: 2,
        fax: 1,
        missed_then_person: 2,
        machine: 3,
    }
    assert campaign["members_by_state"] == {"answered": 3, "failed": 1, "exhausted": 1}
    assert Counter(e["contact"]["phone"] for e in entries) == Counter(
        [person, machine_then_person, missed_then_person]
    )
    assert all(e["result"]["recording_url"] for e in entries)
    assert usage["ai_calls"] == 3


async def test_agent_reads_filled_purpose(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    scenario = Scenario(numbers={number: ("human",)}, time_scale=0.001)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        await run_campaign(engine, [number])
        await eventually(lambda: len(reports(sqlite_db)) == 1, timeout=30)
        entries = await inbox(engine)
        voice = engine.simulator.calls()[0]["voice"]

    assert voice["context"]["purpose"] == "Call P0 about the renewal."
    assert "Call P0 about the renewal." in entries[0]["result"]["transcript"]


async def test_inbox_filters_label_end_to_end(dev_env, sqlite_db):
    interested, other = open_numbers(2)
    scenario = Scenario(
        numbers={interested: ("human",), other: ("human",)},
        agent_results={interested: AgentResult(labels=("interested",))},
        time_scale=0.001,
    )

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        await run_campaign(engine, [interested, other])
        await eventually(lambda: len(reports(sqlite_db)) == 2, timeout=30)
        entries = await inbox(engine, label="interested")

    assert [e["contact"]["phone"] for e in entries] == [interested]


async def test_do_not_call_label_stops_every_campaign(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    # The first call, for the campaign that then waits, goes unanswered. The
    # second reaches a person who asks not to be called again.
    scenario = Scenario(
        numbers={number: ("no-answer", "human")},
        agent_result=AgentResult(labels=("do-not-call",)),
        time_scale=0.001,
    )

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        imported = await engine.import_csv([{"phone": number, "first_name": "Ana"}])
        agent_id = await engine.create_agent(purpose=PURPOSE)
        waiting = await engine.start_campaign(
            imported["import_id"], agent_id=agent_id, retry_delay_seconds=3600
        )
        await eventually(lambda: _waiting(engine, waiting), timeout=60)
        called = await engine.start_campaign(imported["import_id"], agent_id=agent_id)
        first = await eventually(lambda: engine.finished(called), timeout=60)
        second = await eventually(lambda: engine.finished(waiting), timeout=60)
        creates = engine.simulator.stats()["creates_by_number"]

    with sqlite_db.session() as session:
        listed = session.get(DoNotCall, number)
    assert listed is not None
    assert first["members_by_state"] == {"do_not_call": 1}
    assert second["members_by_state"] == {"do_not_call": 1}
    assert creates == {number: 2}


async def test_voicemail_left_retried_by_default(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    scenario = Scenario(numbers={number: ("machine",)}, time_scale=0.001)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        campaign = await run_campaign(
            engine, [number], max_attempts=2, voicemail_text=MESSAGE
        )
        calls = engine.simulator.calls()

    assert outcomes_by_number(sqlite_db) == {number: [Outcome.VOICEMAIL_LEFT] * 2}
    assert [call["voice"]["played"] for call in calls] == [[f"say: {MESSAGE}"]] * 2
    assert campaign["members_by_state"] == {"exhausted": 1}


async def test_voicemail_left_not_retried_when_off(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    scenario = Scenario(numbers={number: ("machine",)}, time_scale=0.001)

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, play_agent=True
    ) as engine:
        await run_campaign(
            engine,
            [number],
            max_attempts=2,
            voicemail_text=MESSAGE,
            retry_voicemail_left=False,
        )
        creates = engine.simulator.stats()["creates_by_number"]

    assert outcomes_by_number(sqlite_db) == {number: [Outcome.VOICEMAIL_LEFT]}
    assert creates == {number: 1}


async def _waiting(engine: Engine, campaign_id: int) -> bool:
    campaign = await engine.campaign(campaign_id)
    return campaign["members_by_state"].get("waiting", 0) == 1
