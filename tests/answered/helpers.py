"""Helpers that seed calls, sign Twilio's webhooks and call the agent's API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import select
from twilio.request_validator import RequestValidator

from activities.settings import settings_to_dict
from activities.types import CampaignSettings
from store.db import Database
from store.models import CallAttempt, Campaign, CampaignMember, Contact, utcnow
from tests.api.conftest import AUTH_TOKEN, PUBLIC_URL

AGENT_VOICE_URL = "https://agent.test/voice"
_sids = itertools.count(1)


@dataclass(frozen=True)
class Agent:
    id: int
    token: str


@dataclass(frozen=True)
class Call:
    sid: str
    attempt_id: int
    member_id: int
    campaign_id: int
    contact_id: int


def new_sid() -> str:
    return f"CA{next(_sids):032x}"


def create_agent(client: TestClient, purpose: str = "") -> Agent:
    response = client.post(
        "/agents",
        json={
            "name": "Ava",
            "from_number": "+12025550100",
            "voice_url": AGENT_VOICE_URL,
            "purpose": purpose,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Agent(id=body["id"], token=body["token"])


def seed_call(
    db: Database,
    agent_id: int,
    *,
    phone: str = "+12025550150",
    variables: dict[str, str] | None = None,
    settings: CampaignSettings | None = None,
    status: str = "ringing",
    campaign_name: str = "spring",
    **attempt_fields: Any,
) -> Call:
    """Store a running campaign with one contact and its first attempt."""
    sid = new_sid()
    with db.session() as session:
        contact = session.exec(select(Contact).where(Contact.phone == phone)).first()
        if contact is None:
            contact = Contact(phone=phone, name="Ana", variables=variables or {})
            session.add(contact)
        campaign = Campaign(
            name=campaign_name,
            agent_id=agent_id,
            status="running",
            settings=settings_to_dict(settings or CampaignSettings()),
        )
        session.add(campaign)
        session.flush()
        member = CampaignMember(
            campaign_id=campaign.id, contact_id=contact.id, state="dialing"
        )
        session.add(member)
        session.flush()
        attempt = CallAttempt(
            member_id=member.id,
            campaign_id=campaign.id,
            contact_id=contact.id,
            attempt_no=1,
            phone=phone,
            provider_sid=sid,
            status=status,
            dialed_at=utcnow(),
            **attempt_fields,
        )
        session.add(attempt)
        session.commit()
        return Call(sid, attempt.id, member.id, campaign.id, contact.id)


def twilio_post(
    client: TestClient, path: str, params: dict[str, str], *, token: str = AUTH_TOKEN
) -> Response:
    """POST a form signed as Twilio signs it, for the API's public URL."""
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, params)
    return client.post(
        path,
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def answer(client: TestClient, call: Call, answered_by: str | None) -> Response:
    """Request the call's TwiML as Twilio does once the call is picked up."""
    params = {"CallSid": call.sid, "CallStatus": "in-progress"}
    if answered_by is not None:
        params["AnsweredBy"] = answered_by
    return twilio_post(client, f"/twilio/voice?attempt={call.attempt_id}", params)


def call_status(
    client: TestClient, call: Call, status: str, sequence: int, **extra: str
) -> Response:
    params = {
        "CallSid": call.sid,
        "CallStatus": status,
        "SequenceNumber": str(sequence),
        **extra,
    }
    return twilio_post(client, f"/twilio/status?attempt={call.attempt_id}", params)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def report(client: TestClient, call: Call, token: str, **body: Any) -> Response:
    payload = {"transcript": "Agent: hi", "summary": "Booked.", "labels": [], **body}
    return client.post(f"/calls/{call.sid}/report", json=payload, headers=bearer(token))
