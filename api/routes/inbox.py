"""The inbox: answered calls, newest first, with what the agent reported."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from activities.types import Outcome
from api.deps import ApiKey, SessionDep
from api.schemas import CallResultOut, InboxContact, InboxEntry, InboxPage, NamedRef
from store.models import Agent, CallAttempt, Campaign, Contact
from store.reports import CallLabel, CallReport, reports_for

router = APIRouter(prefix="/inbox", tags=["inbox"], dependencies=[ApiKey])


@router.get("")
def list_inbox(
    session: SessionDep,
    campaign_id: Annotated[int | None, Query(description="Only this campaign.")] = None,
    label: Annotated[
        str | None, Query(description="Only calls the agent gave this label.")
    ] = None,
    since: Annotated[
        datetime | None,
        Query(description="Only calls placed at or after this time, UTC if naive."),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(description="Only calls placed before this time, UTC if naive."),
    ] = None,
    before_id: Annotated[
        int | None, Query(ge=1, description="Cursor: next_cursor of the last page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InboxPage:
    """List answered calls, newest first, a page at a time."""
    statement = (
        select(CallAttempt, Contact, Campaign, Agent)
        .join(Contact, col(Contact.id) == col(CallAttempt.contact_id))
        .join(Campaign, col(Campaign.id) == col(CallAttempt.campaign_id))
        .join(Agent, col(Agent.id) == col(Campaign.agent_id))
        .where(CallAttempt.outcome == Outcome.ANSWERED)
        .order_by(col(CallAttempt.id).desc())
        .limit(limit)
    )
    if campaign_id is not None:
        statement = statement.where(CallAttempt.campaign_id == campaign_id)
    if label is not None:
        labelled = select(CallLabel.attempt_id).where(
            CallLabel.label == label.strip().lower()
        )
        statement = statement.where(col(CallAttempt.id).in_(labelled))
    if since is not None:
        statement = statement.where(col(CallAttempt.created_at) >= _utc(since))
    if until is not None:
        statement = statement.where(col(CallAttempt.created_at) < _utc(until))
    if before_id is not None:
        statement = statement.where(col(CallAttempt.id) < before_id)
    rows = session.exec(statement).all()
    items = _entries(session, rows)
    next_cursor = items[-1].attempt_id if len(items) == limit else None
    return InboxPage(items=items, next_cursor=next_cursor)


def call_result(report: CallReport | None) -> CallResultOut | None:
    """Return the API form of a call's report, or None when there is none."""
    if report is None:
        return None
    return CallResultOut(
        transcript=report.transcript,
        summary=report.summary,
        labels=list(report.labels or []),
        recording_url=report.recording_url,
        recording_seconds=report.recording_seconds,
        reported_at=report.reported_at,
    )


def _entries(session: Session, rows: Any) -> list[InboxEntry]:
    reports = reports_for(session, [attempt.id for attempt, *_ in rows])
    entries = []
    for attempt, contact, campaign, agent in rows:
        entries.append(
            InboxEntry(
                attempt_id=attempt.id,
                attempt_no=attempt.attempt_no,
                call_sid=attempt.provider_sid,
                contact=InboxContact(
                    id=contact.id, name=contact.name, phone=contact.phone
                ),
                campaign=NamedRef(id=campaign.id, name=campaign.name),
                agent=NamedRef(id=agent.id, name=agent.name),
                called_at=attempt.created_at,
                answered_at=attempt.answered_at,
                ended_at=attempt.ended_at,
                talk_seconds=attempt.talk_seconds,
                result=call_result(reports.get(attempt.id)),
            )
        )
    return entries


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
