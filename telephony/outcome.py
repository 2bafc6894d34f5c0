"""Call statuses, their order, and the outcome of an attempt."""

from __future__ import annotations

from activities.types import Outcome

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

MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other"}
)

# Twilio errors that mean the number itself cannot be called.
PERMANENT_ERROR_CODES = frozenset(
    {"21211", "21214", "21215", "21216", "21217", "13224"}
)


def moves_forward(current: str, new: str) -> bool:
    """Tell whether ``new`` may replace ``current``."""
    return STATUS_RANK.get(new, 0) > STATUS_RANK.get(current, 0)


def decide_outcome(
    status: str, answered_by: str | None, *, unknown_is_answered: bool = True
) -> str:
    """Decide an attempt's outcome from its final status and who answered."""
    if status == "busy":
        return Outcome.BUSY
    if status == "no-answer":
        return Outcome.NO_ANSWER
    if status == "canceled":
        return Outcome.CANCELED
    if status == "failed":
        return Outcome.FAILED
    if answered_by in MACHINE_ANSWERS:
        return Outcome.VOICEMAIL
    if answered_by == "fax":
        return Outcome.FAILED
    if answered_by == "unknown" and not unknown_is_answered:
        return Outcome.VOICEMAIL
    return Outcome.ANSWERED
