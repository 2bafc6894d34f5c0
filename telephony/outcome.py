"""Call statuses, their order, who answered, and the outcome of an attempt."""

from __future__ import annotations

from enum import StrEnum

from activities.types import CampaignSettings, Outcome

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

# A status only moves forward: a late "ringing" never undoes "completed".
STATUS_RANK = {
    "creating": 0,
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": 5,
    "busy": 5,
    "failed": 5,
    "no-answer": 5,
    "canceled": 5,
}

# Twilio's AnsweredBy values from answering-machine detection.
HUMAN = "human"
FAX = "fax"
UNKNOWN = "unknown"
MACHINE_START = "machine_start"
# Reported with MachineDetection=DetectMessageEnd once the greeting has ended,
# which is when a message left on the machine is recorded whole.
MACHINE_END_ANSWERS = frozenset(
    {"machine_end_beep", "machine_end_silence", "machine_end_other"}
)
MACHINE_ANSWERS = MACHINE_END_ANSWERS | {MACHINE_START}

# Values of the MachineDetection parameter of Twilio's call create request.
DETECT_ENABLE = "Enable"
DETECT_MESSAGE_END = "DetectMessageEnd"

# Twilio errors that mean the number itself cannot be called.
PERMANENT_ERROR_CODES = frozenset(
    {"21211", "21214", "21215", "21216", "21217", "13224"}
)


class Answerer(StrEnum):
    """The party that picked up a call, as the engine treats it."""

    PERSON = "person"
    MACHINE = "machine"
    FAX = "fax"


class Route(StrEnum):
    """The engine's voice webhook's handling of an answered call."""

    AGENT = "agent"
    VOICEMAIL_MESSAGE = "voicemail_message"
    HANGUP = "hangup"


def moves_forward(current: str, new: str) -> bool:
    """Tell whether ``new`` may replace ``current``."""
    return STATUS_RANK.get(new, 0) > STATUS_RANK.get(current, 0)


def classify_answer(
    answered_by: str | None, *, unknown_is_answered: bool = True
) -> Answerer:
    """Tell who picked up from Twilio's AnsweredBy value.

    No value (detection off, or skipped because the call dials an extension)
    counts as a person. ``unknown``, and any value Twilio may add later, follow
    the campaign's ``unknown_is_answered`` setting.
    """
    if answered_by is None or answered_by == HUMAN:
        return Answerer.PERSON
    if answered_by in MACHINE_ANSWERS:
        return Answerer.MACHINE
    if answered_by == FAX:
        return Answerer.FAX
    return Answerer.PERSON if unknown_is_answered else Answerer.MACHINE


def decide_outcome(
    status: str,
    answered_by: str | None,
    *,
    unknown_is_answered: bool = True,
    voicemail_left: bool = False,
) -> str:
    """Decide an attempt's outcome from its final status and who answered.

    Who answered is checked first: once detection has reported a machine or a
    fax, the attempt stays a voicemail or a fax whatever final status follows.
    ``voicemail_left`` says that the campaign's message was played to the
    machine.
    """
    if answered_by is not None:
        answerer = classify_answer(answered_by, unknown_is_answered=unknown_is_answered)
        if answerer == Answerer.MACHINE:
            return Outcome.VOICEMAIL_LEFT if voicemail_left else Outcome.VOICEMAIL
        if answerer == Answerer.FAX:
            return Outcome.FAX
    if status == "busy":
        return Outcome.BUSY
    if status == "no-answer":
        return Outcome.NO_ANSWER
    if status == "canceled":
        return Outcome.CANCELED
    if status == "failed":
        return Outcome.FAILED
    return Outcome.ANSWERED


def has_voicemail_message(settings: CampaignSettings) -> bool:
    return bool(settings.voicemail_text or settings.voicemail_audio_url)


def machine_detection_mode(settings: CampaignSettings) -> str | None:
    """Return the MachineDetection value for the campaign's calls, or None.

    A campaign that leaves a voicemail message waits for the greeting's end
    (DetectMessageEnd), so the message is not spoken over the greeting. Other
    campaigns only need to tell a machine from a person (Enable), which is
    faster.
    """
    if not settings.machine_detection:
        return None
    if has_voicemail_message(settings):
        return DETECT_MESSAGE_END
    return DETECT_ENABLE


def route_for(answered_by: str | None, settings: CampaignSettings) -> Route:
    """Decide what the voice webhook does with a call that was picked up.

    A person goes to the agent. A machine whose greeting has ended hears the
    campaign's voicemail message when there is one. Every other machine, and
    a fax, is hung up on.
    """
    answerer = classify_answer(
        answered_by, unknown_is_answered=settings.unknown_is_answered
    )
    if answerer == Answerer.PERSON:
        return Route.AGENT
    if (
        answerer == Answerer.MACHINE
        and answered_by in MACHINE_END_ANSWERS
        and has_voicemail_message(settings)
    ):
        return Route.VOICEMAIL_MESSAGE
    return Route.HANGUP
