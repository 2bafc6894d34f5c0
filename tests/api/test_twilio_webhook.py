"""The status callback: signatures, duplicates and the order of statuses."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi import status
from sqlmodel import select
from twilio.request_validator import RequestValidator

from store.db import Database
from store.models import (
    Agent,
    CallAttempt,
    CallEvent,
    Campaign,
    CampaignMember,
    Contact,
    LineLease,
    utcnow,
)
from tests.api.conftest import AUTH_TOKEN, PUBLIC_URL

SID = "CA" + "a" * 32


@pytest.fixture
def attempt_id(db: Database) -> int:
    with db.session() as session:
        contact = Contact(phone="+12025550150")
        agent = Agent(
            name="a", from_number="+12025550100", voice_url="https://a.test/v"
        )
        session.add_all([contact, agent])
        session.flush()
        campaign = Campaign(name="c", agent_id=agent.id, status="running")
        session.add(campaign)
        session.flush()
        member = CampaignMember(campaign_id=campaign.id, contact_id=contact.id)
        session.add(member)
        session.flush()
        attempt = CallAttempt(
            member_id=member.id,
            campaign_id=campaign.id,
            contact_id=contact.id,
            attempt_no=1,
            phone=contact.phone,
            provider_sid=SID,
            status="queued",
            dialed_at=utcnow(),
        )
        session.add(attempt)
        session.flush()
        session.add(
            LineLease(
                attempt_id=attempt.id,
                campaign_id=campaign.id,
                expires_at=utcnow().replace(year=2100),
            )
        )
        session.commit()
        return attempt.id


def callback(
    client,
    attempt_id: int,
    call_status: str,
    sequence: int,
    *,
    token: str = AUTH_TOKEN,
    **extra: str,
):
    path = f"/twilio/status?attempt={attempt_id}"
    params = {
        "CallSid": SID,
        "CallStatus": call_status,
        "SequenceNumber": str(sequence),
        **extra,
    }
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    return client.post(
        path,
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def attempt_row(db: Database, attempt_id: int) -> CallAttempt:
    with db.session() as session:
        return session.get(CallAttempt, attempt_id)


def event_count(db: Database) -> int:
    with db.session() as session:
        return len(session.exec(select(CallEvent)).all())


def test_forged_signature_rejected(client, db, attempt_id, temporal):
    response = callback(client, attempt_id, "completed", 3, token="wrong-token")

    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert response.json()["error"]["code"] == "invalid_signature"
    assert event_count(db) == 0
    assert attempt_row(db, attempt_id).status == "queued"
    assert temporal.signals == []


def test_missing_signature_rejected(client, db, attempt_id):
    response = client.post(
        f"/twilio/status?attempt={attempt_id}",
        data={"CallSid": SID, "CallStatus": "completed"},
    )

    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert event_count(db) == 0


def test_signature_over_other_url_rejected(client, db, attempt_id):
    # Signed for another attempt's URL, sent to this one.
    path = f"/twilio/status?attempt={attempt_id}"
    params = {"CallSid": SID, "CallStatus": "completed"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + "/twilio/status?attempt=999", params
    )

    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert event_count(db) == 0


def test_duplicate_callback_recorded_once(client, db, attempt_id, temporal):
    first = callback(
        client, attempt_id, "completed", 3, AnsweredBy="human", CallDuration="42"
    )
    second = callback(
        client, attempt_id, "completed", 3, AnsweredBy="human", CallDuration="42"
    )

    assert first.status_code == status.HTTP_204_NO_CONTENT
    assert second.status_code == status.HTTP_204_NO_CONTENT
    assert event_count(db) == 1
    assert len(temporal.signals) == 1


def test_late_ringing_keeps_completed(client, db, attempt_id):
    callback(client, attempt_id, "completed", 3, AnsweredBy="human", CallDuration="42")
    callback(client, attempt_id, "ringing", 1)

    row = attempt_row(db, attempt_id)
    assert row.status == "completed"
    assert row.outcome == "answered"
    assert row.talk_seconds == 42
    assert event_count(db) == 2


def test_final_status_signals_contact(client, attempt_id, temporal):
    callback(client, attempt_id, "no-answer", 2)

    workflow_id, signal, payload = temporal.signals[0]
    assert workflow_id.endswith("/contact-1")
    assert signal == "call_finished"
    assert payload.attempt_id == attempt_id
    assert payload.status == "no-answer"


def test_final_status_releases_line(client, db, attempt_id):
    callback(client, attempt_id, "busy", 2)

    with db.session() as session:
        leases = session.exec(select(LineLease)).all()
    assert leases == []
    assert attempt_row(db, attempt_id).outcome == "busy"


def test_machine_then_completed_is_voicemail(client, db, attempt_id):
    callback(client, attempt_id, "in-progress", 2, AnsweredBy="machine_end_beep")
    callback(client, attempt_id, "completed", 3, CallDuration="20")

    assert attempt_row(db, attempt_id).outcome == "voicemail"


def test_progress_statuses_send_no_signal(client, attempt_id, temporal):
    callback(client, attempt_id, "initiated", 0)
    callback(client, attempt_id, "ringing", 1)

    assert temporal.signals == []
