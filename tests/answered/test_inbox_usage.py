"""The inbox, usage against the plan, and their command-line views."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import status
from rich.console import Console

from activities.types import Outcome
from cli.answered import fetch, print_inbox, print_usage
from cli.client import ApiFailure
from store.db import Database
from store.models import CallAttempt
from tests.answered.helpers import Call, answer, report, seed_call

DECEMBER = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def finish(
    db: Database,
    call: Call,
    outcome: str,
    *,
    talk_seconds: int = 90,
    at: datetime = DECEMBER,
) -> None:
    """Record the call's end as the status callback would."""
    with db.session() as session:
        attempt = session.get(CallAttempt, call.attempt_id)
        assert attempt is not None
        attempt.status = "completed"
        attempt.outcome = outcome
        attempt.talk_seconds = talk_seconds
        attempt.created_at = at
        attempt.answered_at = at
        attempt.ended_at = at
        session.add(attempt)
        session.commit()


def person_call(client, db, agent, *, labels=(), talk_seconds=90, at=DECEMBER):
    call = seed_call(db, agent.id, variables={"first_name": "Ana", "plan": "gold"})
    answer(client, call, "human")
    finish(db, call, Outcome.ANSWERED, talk_seconds=talk_seconds, at=at)
    report(client, call, agent.token, labels=list(labels), summary=f"call {call.sid}")
    return call


def machine_call(client, db, agent, answered_by="machine_end_beep"):
    call = seed_call(db, agent.id)
    answer(client, call, answered_by)
    finish(db, call, Outcome.VOICEMAIL, talk_seconds=30)
    return call


def inbox_ids(client, **params) -> list[int]:
    response = client.get("/inbox", params=params)
    assert response.status_code == status.HTTP_200_OK, response.text
    return [item["attempt_id"] for item in response.json()["items"]]


def test_inbox_lists_answered_newest_first(client, db, agent):
    older = person_call(client, db, agent)
    machine_call(client, db, agent)
    newer = person_call(client, db, agent)

    assert inbox_ids(client) == [newer.attempt_id, older.attempt_id]


def test_inbox_entry_has_report(client, db, agent):
    call = person_call(client, db, agent, labels=["interested"])

    entry = client.get("/inbox").json()["items"][0]

    assert entry["contact"] == {
        "id": call.contact_id,
        "name": "Ana",
        "phone": "+12025550150",
    }
    assert entry["campaign"] == {"id": call.campaign_id, "name": "spring"}
    assert entry["agent"]["name"] == "Ava"
    assert entry["talk_seconds"] == 90
    assert entry["result"]["summary"] == f"call {call.sid}"
    assert entry["result"]["labels"] == ["interested"]
    assert entry["result"]["transcript"] == "Agent: hi"


def test_inbox_filters_by_campaign(client, db, agent):
    first = person_call(client, db, agent)
    person_call(client, db, agent)

    assert inbox_ids(client, campaign_id=first.campaign_id) == [first.attempt_id]


def test_inbox_filters_by_label(client, db, agent):
    labelled = person_call(client, db, agent, labels=["callback", "interested"])
    person_call(client, db, agent, labels=["callback"])

    assert inbox_ids(client, label="Interested") == [labelled.attempt_id]


def test_inbox_filters_by_dates(client, db, agent):
    person_call(client, db, agent, at=NOVEMBER)
    december = person_call(client, db, agent, at=DECEMBER)

    ids = inbox_ids(client, since="2026-12-01T00:00:00", until="2027-01-01T00:00:00")

    assert ids == [december.attempt_id]


def test_inbox_pages_by_cursor(client, db, agent):
    calls = [person_call(client, db, agent) for _ in range(3)]
    first = client.get("/inbox", params={"limit": 2}).json()

    second = client.get(
        "/inbox", params={"limit": 2, "before_id": first["next_cursor"]}
    ).json()

    assert [i["attempt_id"] for i in first["items"]] == [
        calls[2].attempt_id,
        calls[1].attempt_id,
    ]
    assert [i["attempt_id"] for i in second["items"]] == [calls[0].attempt_id]
    assert second["next_cursor"] is None


def test_inbox_needs_api_key(client):
    response = client.get("/inbox", headers={"X-API-Key": ""})

    assert response.status_code == status.HTTP_401_UNAUTHORIZED


def test_usage_counts_only_people(client, db, agent):
    person_call(client, db, agent, talk_seconds=61)
    person_call(client, db, agent, talk_seconds=30)
    machine_call(client, db, agent)
    machine_call(client, db, agent, answered_by="fax")

    usage = client.get("/usage", params={"month": "2026-12"}).json()

    assert usage["ai_calls"] == 2
    assert usage["ai_call_seconds"] == 91
    assert usage["ai_call_minutes"] == 3


def test_usage_against_plan(client, db, agent, api_settings):
    person_call(client, db, agent)
    included = api_settings.plan_included_ai_calls

    usage = client.get("/usage", params={"month": "2026-12"}).json()

    assert usage["included_ai_calls"] == included
    assert usage["remaining_ai_calls"] == included - 1
    assert usage["over_plan_ai_calls"] == 0


def test_usage_skips_voicemail_left(client, db, agent):
    call = seed_call(db, agent.id)
    answer(client, call, "machine_end_beep")
    finish(db, call, Outcome.VOICEMAIL_LEFT)

    usage = client.get("/usage", params={"month": "2026-12"}).json()

    assert usage["ai_calls"] == 0


def test_usage_skips_answered_call_never_connected(client, db, agent):
    call = seed_call(db, agent.id)
    finish(db, call, Outcome.ANSWERED)

    usage = client.get("/usage", params={"month": "2026-12"}).json()

    assert usage["ai_calls"] == 0


def test_usage_counts_only_its_month(client, db, agent):
    person_call(client, db, agent, at=NOVEMBER)
    person_call(client, db, agent, at=DECEMBER)

    november = client.get("/usage", params={"month": "2026-11"}).json()

    assert november["month"] == "2026-11"
    assert november["ai_calls"] == 1


@pytest.mark.parametrize("month", ["2026-13", "december", "2026-1"])
def test_usage_invalid_month_rejected(client, month):
    response = client.get("/usage", params={"month": month})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["error"]["code"] == "invalid_month"


def test_cli_inbox_prints_calls(client, db, agent):
    person_call(client, db, agent, labels=["interested"])
    console = Console(record=True, width=200)

    print_inbox(console, fetch(client, "/inbox", {"label": None}), transcripts=True)

    text = console.export_text()
    assert "interested" in text
    assert "Agent: hi" in text


def test_cli_inbox_narrow_terminal_prints_blocks(client, db, agent):
    call = person_call(client, db, agent, labels=["interested"])
    console = Console(record=True, width=80)

    print_inbox(console, fetch(client, "/inbox", {"label": None}))

    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert f"  summary:   call {call.sid}" in lines
    assert "  labels:    interested" in lines
    assert not any("│" in line for line in lines)


def test_cli_usage_prints_counts(client, db, agent):
    person_call(client, db, agent)
    console = Console(record=True, width=200)

    print_usage(console, fetch(client, "/usage", {"month": "2026-12"}))

    assert "AI calls in 2026-12" in console.export_text()


def test_cli_fetch_raises_api_message(client):
    with pytest.raises(ApiFailure, match="invalid month"):
        fetch(client, "/usage", {"month": "2026-13"})
