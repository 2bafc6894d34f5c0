"""A campaign end to end: dev server, worker, API webhook and simulator."""

from __future__ import annotations

from collections import Counter

from sqlmodel import select

from activities.types import Outcome
from store.models import CallAttempt, CallEvent
from telephony.outcome import decide_outcome
from telephony.scenario import Scenario, expected_call
from tests.conftest import eventually
from tests.engine import open_numbers, running_engine

SEQUENCES = (
    ("human",),
    ("no-answer", "human"),
    ("busy", "machine", "no-answer"),
    ("no-answer", "no-answer", "no-answer"),
    ("invalid",),
    ("failed",),
    ("machine", "human"),
    ("busy", "human"),
)
RETRIED = {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL}


def expected_attempts(scenario: Scenario, number: str, max_attempts: int) -> list[str]:
    """The outcomes the engine must record for a number, attempt by attempt."""
    outcomes = []
    for index in range(max_attempts):
        call = expected_call(scenario, number, index, ring_timeout=25)
        if call.status is None:
            outcomes.append(Outcome.FAILED)
            break
        outcome = decide_outcome(call.status, call.answered_by)
        outcomes.append(outcome)
        if outcome not in RETRIED:
            break
    return outcomes


async def test_twenty_contacts_match_scenario(dev_env, sqlite_db):
    numbers = open_numbers(20)
    scenario = Scenario(
        numbers={n: SEQUENCES[i % len(SEQUENCES)] for i, n in enumerate(numbers)},
        time_scale=0.001,
    )
    expected = {n: expected_attempts(scenario, n, 3) for n in numbers}

    async with running_engine(
        dev_env, sqlite_db, scenario=scenario, record_as="twenty-contacts"
    ) as engine:
        report = await engine.import_csv(
            [{"phone": n, "name": f"c{i}"} for i, n in enumerate(numbers)]
        )
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=1, max_attempts=3
        )
        campaign = await eventually(lambda: engine.finished(campaign_id), timeout=120)

    with sqlite_db.session() as session:
        attempts = session.exec(select(CallAttempt).order_by(CallAttempt.id)).all()
        events = session.exec(select(CallEvent)).all()
    recorded: dict[str, list[str]] = {}
    for attempt in attempts:
        recorded.setdefault(attempt.phone, []).append(attempt.outcome)
    all_expected = Counter(o for outcomes in expected.values() for o in outcomes)
    assert recorded == expected
    assert campaign["calls_by_outcome"] == dict(all_expected)
    assert campaign["members_by_state"].get("waiting", 0) == 0
    assert len(events) >= len([a for a in attempts if a.provider_sid])
    assert all(
        a.status in ("completed", "busy", "no-answer", "failed") for a in attempts
    )
