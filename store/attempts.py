"""Recording call statuses on attempts, shared by the webhook and the activities."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from store.lines import release_line
from store.models import CallAttempt, CallEvent, Campaign, utcnow
from store.reports import voicemail_left
from telephony.outcome import FINAL_STATUSES, decide_outcome, moves_forward

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusReport:
    """One status of one call, from a callback or from asking the provider."""

    provider_sid: str
    status: str
    sequence_number: int = -1
    answered_by: str | None = None
    duration_seconds: int | None = None
    error_code: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AppliedStatus:
    attempt_id: int | None
    recorded: bool
    became_final: bool
    status: str | None


def record_event(
    session: Session, report: StatusReport, attempt_id: int | None, payload: dict
) -> bool:
    """Store a callback once; return False when the same one was stored before."""
    event = CallEvent(
        attempt_id=attempt_id,
        provider_sid=report.provider_sid,
        status=report.status,
        sequence_number=report.sequence_number,
        answered_by=report.answered_by,
        payload=payload,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        return False
    return True


def apply_status(session: Session, attempt: CallAttempt, report: StatusReport) -> bool:
    """Move an attempt forward to the reported status; return True if final now.

    A status that is not ahead of the current one changes nothing, so late and
    duplicate reports are harmless. Who answered is kept from whichever report
    carries it, because the outcome is decided once, at the final status.
    """
    if report.answered_by and not attempt.answered_by:
        attempt.answered_by = report.answered_by
    if not moves_forward(attempt.status, report.status):
        session.add(attempt)
        return False
    now = report.at or utcnow()
    attempt.status = report.status
    attempt.last_sequence = max(attempt.last_sequence, report.sequence_number)
    if report.status == "in-progress" and attempt.answered_at is None:
        attempt.answered_at = now
    if report.error_code:
        attempt.error_code = report.error_code
    final = report.status in FINAL_STATUSES
    if final:
        _finish(session, attempt, report, now)
    session.add(attempt)
    return final


def _finish(
    session: Session, attempt: CallAttempt, report: StatusReport, now: datetime
) -> None:
    attempt.ended_at = now
    talk = report.duration_seconds if report.status == "completed" else 0
    attempt.talk_seconds = talk
    if attempt.dialed_at is not None:
        total = max(0, int((now - _aware(attempt.dialed_at)).total_seconds()))
        attempt.ring_seconds = max(0, total - (talk or 0))
    campaign = session.get(Campaign, attempt.campaign_id)
    unknown_is_answered = True
    if campaign is not None:
        unknown_is_answered = campaign.settings.get("unknown_is_answered", True)
    attempt.outcome = decide_outcome(
        attempt.status,
        attempt.answered_by,
        unknown_is_answered=unknown_is_answered,
        voicemail_left=voicemail_left(session, attempt.id),
    )
    release_line(session, attempt.id)


def find_attempt(
    session: Session, provider_sid: str, attempt_id: int | None
) -> CallAttempt | None:
    """Find the attempt a callback is about, linking the call if it is new.

    The attempt id travels in the callback URL, so a call whose create response
    was lost still finds its attempt through its first callback. On
    PostgreSQL the row stays locked until the session commits, so two
    callbacks, or a callback and an activity, change it one after the other.
    """
    attempt = session.exec(
        select(CallAttempt)
        .where(CallAttempt.provider_sid == provider_sid)
        .with_for_update()
    ).first()
    if attempt is not None or attempt_id is None:
        return attempt
    attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
    if attempt is None:
        return None
    if attempt.provider_sid in (None, provider_sid):
        # Two callbacks of a new call can race to link it; both belong here.
        if attempt.provider_sid is None:
            attempt.provider_sid = provider_sid
            session.add(attempt)
        return attempt
    logger.warning(
        "Callback for call %s names attempt %s, which belongs to call %s",
        provider_sid,
        attempt_id,
        attempt.provider_sid,
    )
    return None


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns.
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
