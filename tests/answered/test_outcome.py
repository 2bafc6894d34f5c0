"""Who answered decides the outcome, the route and the detection mode."""

from __future__ import annotations

import pytest

from activities.types import CampaignSettings, Outcome
from telephony.outcome import (
    DETECT_ENABLE,
    DETECT_MESSAGE_END,
    Route,
    decide_outcome,
    machine_detection_mode,
    route_for,
)

VOICEMAIL_SET = CampaignSettings(voicemail_text="Please call us back.")
AS_MACHINE = CampaignSettings(unknown_is_answered=False)


@pytest.mark.parametrize(
    ("answered_by", "expected"),
    [
        ("human", Outcome.ANSWERED),
        (None, Outcome.ANSWERED),
        ("machine_start", Outcome.VOICEMAIL),
        ("machine_end_beep", Outcome.VOICEMAIL),
        ("machine_end_silence", Outcome.VOICEMAIL),
        ("machine_end_other", Outcome.VOICEMAIL),
        ("fax", Outcome.FAX),
        ("unknown", Outcome.ANSWERED),
    ],
)
def test_outcome_of_completed_call(answered_by, expected):
    assert decide_outcome("completed", answered_by) == expected


def test_outcome_unknown_as_machine_is_voicemail():
    outcome = decide_outcome("completed", "unknown", unknown_is_answered=False)

    assert outcome == Outcome.VOICEMAIL


def test_outcome_new_answered_by_follows_unknown_setting():
    outcome = decide_outcome("completed", "robot", unknown_is_answered=False)

    assert outcome == Outcome.VOICEMAIL


@pytest.mark.parametrize("status", ["busy", "failed", "canceled", "no-answer"])
def test_outcome_machine_stays_voicemail_whatever_status(status):
    assert decide_outcome(status, "machine_end_beep") == Outcome.VOICEMAIL


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("busy", Outcome.BUSY),
        ("no-answer", Outcome.NO_ANSWER),
        ("failed", Outcome.FAILED),
        ("canceled", Outcome.CANCELED),
    ],
)
def test_outcome_unanswered_follows_status(status, expected):
    assert decide_outcome(status, None) == expected


def test_outcome_message_played_is_voicemail_left():
    outcome = decide_outcome("completed", "machine_end_beep", voicemail_left=True)

    assert outcome == Outcome.VOICEMAIL_LEFT


def test_outcome_voicemail_retried_by_default():
    assert Outcome.VOICEMAIL in CampaignSettings().retry_outcomes


def test_outcome_fax_is_not_retried_by_default():
    assert Outcome.FAX not in CampaignSettings().retry_outcomes


@pytest.mark.parametrize(
    ("answered_by", "settings", "expected"),
    [
        ("human", CampaignSettings(), Route.AGENT),
        (None, CampaignSettings(), Route.AGENT),
        ("unknown", CampaignSettings(), Route.AGENT),
        ("unknown", AS_MACHINE, Route.HANGUP),
        ("machine_end_beep", CampaignSettings(), Route.HANGUP),
        ("machine_end_beep", VOICEMAIL_SET, Route.VOICEMAIL_MESSAGE),
        ("machine_end_silence", VOICEMAIL_SET, Route.VOICEMAIL_MESSAGE),
        ("machine_end_other", VOICEMAIL_SET, Route.VOICEMAIL_MESSAGE),
        ("machine_start", VOICEMAIL_SET, Route.HANGUP),
        ("fax", VOICEMAIL_SET, Route.HANGUP),
    ],
)
def test_route_for_answered_by(answered_by, settings, expected):
    assert route_for(answered_by, settings) == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (CampaignSettings(), DETECT_ENABLE),
        (VOICEMAIL_SET, DETECT_MESSAGE_END),
        (
            CampaignSettings(voicemail_audio_url="https://a.test/m.mp3"),
            DETECT_MESSAGE_END,
        ),
        (CampaignSettings(machine_detection=False), None),
    ],
)
def test_machine_detection_mode(settings, expected):
    assert machine_detection_mode(settings) == expected
