"""The voice webhook: agent, voicemail message or hang up, by who answered."""

from __future__ import annotations

from xml.etree import ElementTree

from fastapi import status

from activities.types import CampaignSettings, Outcome
from store.db import Database
from store.models import CallAttempt
from tests.answered.helpers import (
    AGENT_VOICE_URL,
    PUBLIC_URL,
    answer,
    call_status,
    seed_call,
    twilio_post,
)

MESSAGE = "Hello, this is Acme. Please call us back."
LEAVE_MESSAGE = CampaignSettings(voicemail_text=MESSAGE)


def verbs(response) -> list[tuple[str, str]]:
    root = ElementTree.fromstring(response.text)
    return [(verb.tag, (verb.text or "").strip()) for verb in root]


def attempt_row(db: Database, attempt_id: int) -> CallAttempt:
    with db.session() as session:
        row = session.get(CallAttempt, attempt_id)
        assert row is not None
        return row


def test_voice_person_redirected_to_agent(client, db, agent):
    call = seed_call(db, agent.id)

    response = answer(client, call, "human")

    assert response.status_code == status.HTTP_200_OK
    assert response.headers["content-type"].startswith("application/xml")
    assert verbs(response)[-1] == ("Redirect", AGENT_VOICE_URL)


def test_voice_person_call_recorded(client, db, agent):
    call = seed_call(db, agent.id)

    response = answer(client, call, "human")

    recording = ElementTree.fromstring(response.text).find("Start/Recording")
    assert recording is not None
    assert recording.get("recordingStatusCallback") == (
        f"{PUBLIC_URL}/twilio/recording?attempt={call.attempt_id}"
    )


def test_voice_recording_off_not_started(client, db, agent):
    call = seed_call(db, agent.id, settings=CampaignSettings(record_calls=False))

    response = answer(client, call, "human")

    assert verbs(response) == [("Redirect", AGENT_VOICE_URL)]


def test_voice_without_detection_goes_to_agent(client, db, agent):
    call = seed_call(db, agent.id, settings=CampaignSettings(record_calls=False))

    response = answer(client, call, None)

    assert verbs(response) == [("Redirect", AGENT_VOICE_URL)]


def test_voice_machine_hears_message(client, db, agent):
    call = seed_call(db, agent.id, settings=LEAVE_MESSAGE)

    response = answer(client, call, "machine_end_beep")

    assert verbs(response) == [("Say", MESSAGE), ("Hangup", "")]


def test_voice_machine_hears_audio_file(client, db, agent):
    audio = "https://cdn.example.test/message.mp3"
    settings = CampaignSettings(voicemail_audio_url=audio)
    call = seed_call(db, agent.id, settings=settings)

    response = answer(client, call, "machine_end_silence")

    assert verbs(response) == [("Play", audio), ("Hangup", "")]


def test_voice_machine_without_message_hung_up(client, db, agent):
    call = seed_call(db, agent.id)

    response = answer(client, call, "machine_end_beep")

    assert verbs(response) == [("Hangup", "")]


def test_voice_greeting_not_ended_hung_up(client, db, agent):
    call = seed_call(db, agent.id, settings=LEAVE_MESSAGE)

    response = answer(client, call, "machine_start")

    assert verbs(response) == [("Hangup", "")]


def test_voice_fax_hung_up(client, db, agent):
    call = seed_call(db, agent.id, settings=LEAVE_MESSAGE)

    response = answer(client, call, "fax")

    assert verbs(response) == [("Hangup", "")]


def test_voice_unknown_as_machine_hung_up(client, db, agent):
    call = seed_call(db, agent.id, settings=CampaignSettings(unknown_is_answered=False))

    response = answer(client, call, "unknown")

    assert verbs(response) == [("Hangup", "")]


def test_voice_unknown_call_hung_up(client, db, agent):
    call = seed_call(db, agent.id)
    params = {"CallSid": "CA" + "f" * 32, "AnsweredBy": "human"}

    response = twilio_post(client, "/twilio/voice", params)

    assert response.status_code == status.HTTP_200_OK
    assert verbs(response) == [("Hangup", "")]
    assert attempt_row(db, call.attempt_id).answered_by is None


def test_voice_unsigned_request_rejected(client, db, agent):
    call = seed_call(db, agent.id)

    response = client.post(
        f"/twilio/voice?attempt={call.attempt_id}",
        data={"CallSid": call.sid, "AnsweredBy": "human"},
    )

    assert response.status_code == status.HTTP_403_FORBIDDEN
    assert response.json()["error"]["code"] == "invalid_signature"


def test_voice_records_answered_by(client, db, agent):
    call = seed_call(db, agent.id)

    answer(client, call, "machine_end_other")

    assert attempt_row(db, call.attempt_id).answered_by == "machine_end_other"


def test_voice_repeated_request_keeps_first_route(client, db, agent):
    call = seed_call(db, agent.id, settings=LEAVE_MESSAGE)
    answer(client, call, "human")

    again = answer(client, call, "machine_end_beep")

    assert verbs(again)[-1] == ("Redirect", AGENT_VOICE_URL)


def test_machine_beep_then_completed_stays_voicemail(client, db, agent):
    call = seed_call(db, agent.id)
    call_status(client, call, "in-progress", 2, AnsweredBy="machine_end_beep")

    call_status(client, call, "completed", 3, CallDuration="20")

    assert attempt_row(db, call.attempt_id).outcome == Outcome.VOICEMAIL


def test_message_played_then_completed_is_voicemail_left(client, db, agent):
    call = seed_call(db, agent.id, settings=LEAVE_MESSAGE)
    answer(client, call, "machine_end_beep")

    call_status(client, call, "completed", 3, CallDuration="12")

    assert attempt_row(db, call.attempt_id).outcome == Outcome.VOICEMAIL_LEFT


def test_fax_then_completed_is_fax(client, db, agent):
    call = seed_call(db, agent.id)
    answer(client, call, "fax")

    call_status(client, call, "completed", 3, AnsweredBy="fax", CallDuration="3")

    assert attempt_row(db, call.attempt_id).outcome == Outcome.FAX
