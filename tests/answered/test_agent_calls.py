"""The agent's endpoints: context, report, recording, and variables at creation."""

from __future__ import annotations

from datetime import timedelta

from fastapi import status
from sqlmodel import func, select

from activities.types import MemberState
from store.db import Database
from store.models import CampaignMember, DoNotCall, utcnow
from store.reports import CallLabel, CallReport
from tests.answered.helpers import (
    Call,
    answer,
    bearer,
    call_status,
    create_agent,
    report,
    seed_call,
    twilio_post,
)
from tests.api.conftest import API_KEY
from workflows import names

VARIABLES = {"first_name": "Ana", "Plan": "gold"}


def connected_call(client, db: Database, agent_id: int, **fields) -> Call:
    call = seed_call(db, agent_id, variables=VARIABLES, **fields)
    answer(client, call, "human")
    return call


def context(client, call: Call, token: str):
    return client.get(f"/calls/{call.sid}/context", headers=bearer(token))


def report_count(db: Database) -> int:
    with db.session() as session:
        return session.exec(select(func.count()).select_from(CallReport)).one()


def member_state(db: Database, member_id: int) -> str:
    with db.session() as session:
        member = session.get(CampaignMember, member_id)
        assert member is not None
        return member.state


def recording_callback(client, call: Call, sid: str = "RE" + "1" * 32, **extra):
    params = {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": call.sid,
        "RecordingSid": sid,
        "RecordingUrl": f"https://api.twilio.test/Recordings/{sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "42",
        **extra,
    }
    return twilio_post(client, f"/twilio/recording?attempt={call.attempt_id}", params)


def test_context_fills_placeholders(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = context(client, call, agent.token)

    body = response.json()
    assert response.status_code == status.HTTP_200_OK
    assert body["purpose"] == "Remind Ana of the gold plan."
    assert body["missing_variables"] == []


def test_context_gives_ids_and_variables(client, db, agent):
    call = connected_call(client, db, agent.id)

    body = context(client, call, agent.token).json()

    assert body["campaign_id"] == call.campaign_id
    assert body["attempt_no"] == 1
    assert body["variables"] == {"name": "Ana", **VARIABLES}


def test_context_without_token_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = client.get(f"/calls/{call.sid}/context")

    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert response.json()["error"]["code"] == "invalid_agent_token"


def test_context_api_key_as_token_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = context(client, call, API_KEY)

    assert response.status_code == status.HTTP_401_UNAUTHORIZED


def test_context_with_wrong_token_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = context(client, call, agent.token + "x")

    assert response.status_code == status.HTTP_401_UNAUTHORIZED


def test_context_of_other_agents_call_not_found(client, db, agent):
    call = connected_call(client, db, agent.id)
    other = create_agent(client)

    response = context(client, call, other.token)

    assert response.status_code == status.HTTP_404_NOT_FOUND


def test_context_replaced_token_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)

    replaced = client.post(f"/agents/{agent.id}/token")

    old = context(client, call, agent.token)
    new = context(client, call, replaced.json()["token"])
    assert replaced.status_code == status.HTTP_201_CREATED
    assert old.status_code == status.HTTP_401_UNAUTHORIZED
    assert new.status_code == status.HTTP_200_OK


def test_context_of_machine_call_rejected(client, db, agent):
    call = seed_call(db, agent.id, variables=VARIABLES)
    answer(client, call, "machine_end_beep")

    response = context(client, call, agent.token)

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["error"]["code"] == "call_not_answered"


def test_context_long_after_end_rejected(client, db, agent):
    ended = utcnow() - timedelta(hours=1)
    call = connected_call(client, db, agent.id, ended_at=ended)

    response = context(client, call, agent.token)

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["error"]["code"] == "call_ended"


def test_context_reports_missing_variable(client, db, agent):
    call = seed_call(db, agent.id, variables={"first_name": "Ana"})
    answer(client, call, "human")

    body = context(client, call, agent.token).json()

    assert body["purpose"] == "Remind Ana of the {{plan}} plan."
    assert body["missing_variables"] == ["plan"]


def test_report_stored_once(client, db, agent):
    call = connected_call(client, db, agent.id)

    first = report(client, call, agent.token, labels=["Interested"])
    second = report(client, call, agent.token, labels=["Interested"])

    assert first.status_code == status.HTTP_201_CREATED
    assert first.json()["stored"] is True
    assert second.status_code == status.HTTP_200_OK
    assert second.json()["stored"] is False
    assert report_count(db) == 1


def test_report_labels_stored_once(client, db, agent):
    call = connected_call(client, db, agent.id)

    report(client, call, agent.token, labels=["Interested", "interested "])
    report(client, call, agent.token, labels=["Interested", "interested "])

    with db.session() as session:
        labels = session.exec(select(CallLabel.label)).all()
    assert labels == ["interested"]


def test_different_second_report_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)
    report(client, call, agent.token, summary="Booked.")

    response = report(client, call, agent.token, summary="Not interested.")

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["error"]["code"] == "already_reported"


def test_report_for_unanswered_call_rejected(client, db, agent):
    call = seed_call(db, agent.id, variables=VARIABLES)
    call_status(client, call, "no-answer", 3)

    response = report(client, call, agent.token)

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["error"]["code"] == "call_not_answered"
    assert report_count(db) == 0


def test_report_for_voicemail_rejected(client, db, agent):
    call = seed_call(db, agent.id, variables=VARIABLES)
    answer(client, call, "machine_end_beep")

    response = report(client, call, agent.token)

    assert response.status_code == status.HTTP_409_CONFLICT


def test_do_not_call_label_lists_number(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = report(client, call, agent.token, labels=["Do-Not-Call"])

    with db.session() as session:
        listed = session.get(DoNotCall, "+12025550150")
    assert response.json()["do_not_call"] is True
    assert listed is not None
    assert listed.source == "agent"


def test_do_not_call_label_ends_member(client, db, agent):
    call = connected_call(client, db, agent.id)

    report(client, call, agent.token, labels=["do-not-call"])

    assert member_state(db, call.member_id) == MemberState.DO_NOT_CALL


def test_do_not_call_label_wakes_other_campaigns(client, db, agent, temporal):
    call = connected_call(client, db, agent.id)
    other = seed_call(db, agent.id, campaign_name="autumn")
    with db.session() as session:
        waiting = session.get(CampaignMember, other.member_id)
        waiting.state = MemberState.WAITING
        session.add(waiting)
        session.commit()

    report(client, call, agent.token, labels=["do-not-call"])

    campaign_workflow = names.campaign_workflow_id(other.campaign_id)
    expected = names.contact_workflow_id(campaign_workflow, other.contact_id)
    assert (expected, "wake", None) in temporal.signals


def test_ordinary_labels_list_nothing(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = report(client, call, agent.token, labels=["callback"])

    with db.session() as session:
        listed = session.get(DoNotCall, "+12025550150")
    assert response.json()["do_not_call"] is False
    assert listed is None


def test_recording_callback_stored_on_attempt(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = recording_callback(client, call)

    contact = client.get(f"/contacts/{call.contact_id}").json()
    result = contact["attempts"][0]["result"]
    assert response.status_code == status.HTTP_204_NO_CONTENT
    assert result["recording_url"].endswith("/Recordings/RE" + "1" * 32)
    assert result["recording_seconds"] == 42


def test_recording_callback_keeps_first(client, db, agent):
    call = connected_call(client, db, agent.id)
    recording_callback(client, call)

    recording_callback(client, call, sid="RE" + "2" * 32)

    with db.session() as session:
        row = session.exec(select(CallReport)).one()
    assert row.recording_sid == "RE" + "1" * 32


def test_recording_replaces_url_from_report(client, db, agent):
    call = connected_call(client, db, agent.id)
    report(client, call, agent.token, recording_url="https://agent.test/rec.mp3")

    recording_callback(client, call)

    with db.session() as session:
        row = session.exec(select(CallReport)).one()
    assert row.recording_url == "https://api.twilio.test/Recordings/RE" + "1" * 32


def test_unsigned_recording_callback_rejected(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = client.post(
        f"/twilio/recording?attempt={call.attempt_id}",
        data={"CallSid": call.sid, "RecordingStatus": "completed"},
    )

    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert report_count(db) == 0


def test_absent_recording_ignored(client, db, agent):
    call = connected_call(client, db, agent.id)

    response = recording_callback(client, call, RecordingStatus="absent")

    assert response.status_code == status.HTTP_204_NO_CONTENT
    assert report_count(db) == 0


def test_contact_shows_report(client, db, agent):
    call = connected_call(client, db, agent.id)
    report(client, call, agent.token, labels=["interested"], summary="Booked.")

    attempt = client.get(f"/contacts/{call.contact_id}").json()["attempts"][0]

    assert attempt["result"]["summary"] == "Booked."
    assert attempt["result"]["labels"] == ["interested"]


def test_campaign_missing_variables_rejected(client):
    csv = (
        b"phone,first_name,plan\n"
        b"+12025550161,Ana,gold\n"
        b"+12025550162,,silver\n"
        b"+12025550163,Cy,\n"
    )
    imported = client.post(
        "/contacts/import", files={"file": ("c.csv", csv, "text/csv")}
    ).json()
    agent = create_agent(client, purpose="Hi {{first_name}}, about {{ Plan }}.")
    ids = {c["phone"]: c["id"] for c in client.get("/contacts").json()["items"]}

    response = client.post(
        "/campaigns",
        json={
            "name": "spring",
            "agent_id": agent.id,
            "contacts": {"import_id": imported["import_id"]},
        },
    )

    error = response.json()["error"]
    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert error["code"] == "missing_variables"
    assert error["details"] == [
        {"contact_id": ids["+12025550162"], "missing": ["first_name"]},
        {"contact_id": ids["+12025550163"], "missing": ["plan"]},
    ]
    assert client.get("/campaigns").json() == []


def test_campaign_with_all_variables_created(client):
    csv = b"phone,First Name\n+12025550164,Ana\n"
    imported = client.post(
        "/contacts/import", files={"file": ("c.csv", csv, "text/csv")}
    ).json()
    agent = create_agent(client, purpose="Hi {{first_name}}.")

    response = client.post(
        "/campaigns",
        json={
            "name": "spring",
            "agent_id": agent.id,
            "contacts": {"import_id": imported["import_id"]},
        },
    )

    assert response.status_code == status.HTTP_201_CREATED
