"""Creating campaigns with their members, and counting how they are doing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from activities.types import MemberState
from store.imports import ImportContact
from store.lines import lines_in_use
from store.models import CallAttempt, CampaignMember, Contact, utcnow


def add_members(
    session: Session,
    campaign_id: int,
    *,
    import_id: int | None = None,
    contact_ids: list[int] | None = None,
    all_contacts: bool = False,
) -> int:
    """Add the selected contacts as pending members; return how many."""
    if import_id is not None:
        source = sa_select(ImportContact.contact_id).where(
            ImportContact.import_id == import_id
        )
    elif contact_ids is not None:
        source = sa_select(Contact.id).where(Contact.id.in_(contact_ids))  # type: ignore[union-attr]
    elif all_contacts:
        source = sa_select(Contact.id)
    else:
        return 0
    now = utcnow()
    ids = source.subquery()
    statement = insert(CampaignMember).from_select(
        ["campaign_id", "contact_id", "state", "attempts_made", "updated_at"],
        sa_select(
            literal(campaign_id),
            ids.c[0],
            literal(MemberState.PENDING.value),
            literal(0),
            literal(now),
        ),
    )
    result = session.exec(statement)  # type: ignore[call-overload]
    return result.rowcount or 0


@dataclass(frozen=True)
class CampaignCounts:
    members: int
    members_by_state: dict[str, int]
    calls_placed: int
    calls_by_outcome: dict[str, int]
    not_called_by_reason: dict[str, int]
    waiting_by_reason: dict[str, int]
    lines_in_use: int
    next_attempt_at: datetime | None
    expected_finish_at: datetime | None


def campaign_counts(
    session: Session,
    campaign_id: int,
    *,
    max_attempts: int = 3,
    retry_delay: timedelta = timedelta(hours=4),
) -> CampaignCounts:
    by_state = dict(
        session.exec(
            select(CampaignMember.state, func.count())
            .where(CampaignMember.campaign_id == campaign_id)
            .group_by(CampaignMember.state)
        ).all()
    )
    by_outcome = dict(
        session.exec(
            select(CallAttempt.outcome, func.count())
            .where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.outcome.is_not(None),  # type: ignore[union-attr]
            )
            .group_by(CallAttempt.outcome)
        ).all()
    )
    placed = session.exec(
        select(func.count())
        .select_from(CallAttempt)
        .where(
            CallAttempt.campaign_id == campaign_id,
            CallAttempt.provider_sid.is_not(None),  # type: ignore[union-attr]
        )
    ).one()
    next_at = session.exec(
        select(func.min(CampaignMember.next_attempt_at)).where(
            CampaignMember.campaign_id == campaign_id,
            CampaignMember.state == MemberState.WAITING,
        )
    ).one()
    return CampaignCounts(
        members=sum(by_state.values()),
        members_by_state=by_state,
        calls_placed=placed,
        calls_by_outcome=by_outcome,
        not_called_by_reason=_reasons(
            session, campaign_id, [MemberState.NOT_CALLED, MemberState.DO_NOT_CALL]
        ),
        waiting_by_reason=_reasons(session, campaign_id, [MemberState.WAITING]),
        lines_in_use=lines_in_use(session, utcnow(), campaign_id),
        next_attempt_at=next_at,
        expected_finish_at=_expected_finish(
            session, campaign_id, max_attempts=max_attempts, retry_delay=retry_delay
        ),
    )


def _expected_finish(
    session: Session, campaign_id: int, *, max_attempts: int, retry_delay: timedelta
) -> datetime | None:
    """Estimate when the last open member ends: an upper bound, not a promise.

    It assumes the open member with the fewest attempts made needs all its
    remaining attempts, each a retry delay after the latest scheduled one.
    Waits for calling windows and lines can make it later still.
    """
    open_states = [MemberState.PENDING, MemberState.WAITING, MemberState.DIALING]
    latest, fewest = session.exec(
        select(
            func.max(CampaignMember.next_attempt_at),
            func.min(CampaignMember.attempts_made),
        ).where(
            CampaignMember.campaign_id == campaign_id,
            CampaignMember.state.in_(open_states),  # type: ignore[attr-defined]
        )
    ).one()
    if fewest is None:
        return None
    start = max(latest, utcnow()) if latest is not None else utcnow()
    remaining = max(max_attempts - fewest - 1, 0)
    return start + remaining * retry_delay


def _reasons(session: Session, campaign_id: int, states: list[str]) -> dict[str, int]:
    rows = session.exec(
        select(CampaignMember.reason, func.count())
        .where(
            CampaignMember.campaign_id == campaign_id,
            CampaignMember.state.in_(states),  # type: ignore[attr-defined]
        )
        .group_by(CampaignMember.reason)
    ).all()
    return {reason or "unknown": count for reason, count in rows}
