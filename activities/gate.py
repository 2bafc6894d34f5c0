"""The one check before every dial: dial now, wait until a time, or never.

It runs inside the transaction that records the attempt, so what it reads
(the do-not-call list, the campaign's status, the calls of the last 24 hours)
is what holds at the moment the call is placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from activities.types import CampaignSettings, Decision, MemberState
from rules.decide import decide_time
from rules.places import locate
from rules.window import CallingWindow
from store.models import (
    CallAttempt,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    DoNotCall,
)

# A paused campaign's contacts look again this often, in case the wake-up
# sent on resume was lost.
PAUSE_RECHECK = timedelta(minutes=10)


@dataclass(frozen=True)
class Verdict:
    decision: str
    until: datetime | None = None
    reason: str | None = None
    member_state: str | None = None


DIAL = Verdict(Decision.DIALED)


@dataclass(frozen=True)
class _Dial:
    """Everything one check before a dial reads."""

    session: Session
    campaign: Campaign
    member: CampaignMember
    contact: Contact
    settings: CampaignSettings
    now: datetime


def check_before_dial(
    session: Session,
    *,
    campaign: Campaign,
    member: CampaignMember,
    contact: Contact,
    settings: CampaignSettings,
    now: datetime,
) -> Verdict:
    """Decide whether this member may be dialled at ``now``."""
    dial = _Dial(session, campaign, member, contact, settings, now)
    for check in (_campaign_status, _do_not_call, _consent, _attempts, _retry_time):
        verdict = check(dial)
        if verdict is not None:
            return verdict
    return _calling_time(session, contact, settings, now)


def _campaign_status(dial: _Dial) -> Verdict | None:
    if dial.campaign.status == CampaignStatus.CANCELED:
        return Verdict(
            Decision.NEVER,
            reason="campaign canceled",
            member_state=MemberState.CANCELED,
        )
    if dial.campaign.status == CampaignStatus.PAUSED:
        return Verdict(
            Decision.WAIT, until=dial.now + PAUSE_RECHECK, reason="campaign paused"
        )
    return None


def _do_not_call(dial: _Dial) -> Verdict | None:
    if dial.session.get(DoNotCall, dial.contact.phone) is not None:
        return Verdict(
            Decision.NEVER,
            reason="number is on the do-not-call list",
            member_state=MemberState.DO_NOT_CALL,
        )
    return None


def _consent(dial: _Dial) -> Verdict | None:
    if dial.settings.require_consent and not dial.contact.consent_basis:
        return Verdict(
            Decision.NEVER,
            reason=(
                "no consent basis recorded: import it (consent column) or create "
                "the campaign with require_consent false"
            ),
            member_state=MemberState.NOT_CALLED,
        )
    return None


def _attempts(dial: _Dial) -> Verdict | None:
    if dial.member.attempts_made >= dial.settings.max_attempts:
        return Verdict(
            Decision.NEVER,
            reason=f"all {dial.settings.max_attempts} attempts made",
            member_state=MemberState.EXHAUSTED,
        )
    return None


def _retry_time(dial: _Dial) -> Verdict | None:
    due = aware(dial.member.retry_due_at)
    if due is not None and due > dial.now:
        return Verdict(
            Decision.WAIT, until=due, reason=dial.member.reason or "retry delay"
        )
    return None


def _calling_time(
    session: Session, contact: Contact, settings: CampaignSettings, now: datetime
) -> Verdict:
    place = locate(contact.phone, contact.timezone, contact.state)
    window = calling_window(settings)
    verdict = decide_time(now, place, window, recent_calls(session, contact.phone, now))
    if verdict.kind == "dial":
        return DIAL
    if verdict.kind == "wait":
        return Verdict(Decision.WAIT, until=verdict.until, reason=verdict.reason)
    return Verdict(
        Decision.NEVER, reason=verdict.reason, member_state=MemberState.NOT_CALLED
    )


def calling_window(settings: CampaignSettings) -> CallingWindow:
    return CallingWindow.parse(
        settings.window_start, settings.window_end, settings.window_days
    )


def recent_calls(session: Session, phone: str, now: datetime) -> list[datetime]:
    """Times of the calls placed to this number in the last 24 hours."""
    since = now - timedelta(hours=24)
    rows = session.exec(
        select(CallAttempt.dialed_at).where(
            CallAttempt.phone == phone,
            CallAttempt.dialed_at.is_not(None),  # type: ignore[union-attr]
            CallAttempt.dialed_at > since,  # type: ignore[operator]
        )
    ).all()
    return sorted(aware(value) for value in rows if value is not None)


def aware(value: datetime | None) -> datetime | None:
    """Attach UTC to a naive datetime, as SQLite returns them."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
