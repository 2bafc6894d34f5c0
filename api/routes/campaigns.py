"""Campaigns: create, list, get, and start, pause, resume or cancel them."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.settings import settings_from_dict, settings_to_dict
from activities.types import CampaignInput, CampaignSettings, MemberState
from api.deps import ApiKey, DbDep, IdPath, SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError, not_found
from api.schemas import (
    CampaignCreate,
    CampaignOut,
    ContactSelection,
    MemberOut,
    MemberPage,
)
from config import Settings
from rules.window import CallingWindow, WindowError
from store.campaigns import add_members, campaign_counts
from store.db import Database
from store.imports import ContactImport
from store.models import (
    Agent,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    utcnow,
)
from store.reports import members_missing_variables, placeholder_names
from workflows import names
from workflows.campaign import CampaignWorkflow

logger = logging.getLogger(__name__)
ACTIVE_CONTACTS_PER_LINE = 3
ACTIVE_CONTACTS_MIN = 20
router = APIRouter(prefix="/campaigns", tags=["campaigns"], dependencies=[ApiKey])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignCreate, session: SessionDep, settings: SettingsDep
) -> CampaignOut:
    """Create a campaign in draft with the selected contacts as members."""
    agent = session.get(Agent, body.agent_id)
    if agent is None:
        raise not_found("agent", body.agent_id)
    campaign_settings = CampaignSettings(
        **{
            **body.settings.model_dump(),
            "retry_outcomes": tuple(body.settings.retry_outcomes),
            "window_days": tuple(body.settings.window_days),
        }
    )
    _validate_window(campaign_settings)
    campaign = Campaign(
        name=body.name,
        agent_id=body.agent_id,
        settings=settings_to_dict(campaign_settings),
    )
    session.add(campaign)
    session.flush()
    selection = body.contacts
    _check_selection(session, selection)
    added = add_members(
        session,
        campaign.id,
        import_id=selection.import_id,
        contact_ids=selection.contact_ids,
        all_contacts=selection.all,
    )
    if added == 0:
        session.rollback()
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "no_contacts",
            "the campaign selects no contacts: the import or the contact list is "
            "empty; import contacts first",
        )
    _require_variables(session, campaign.id, agent)
    session.commit()
    logger.info("Campaign %s created with %s members", campaign.id, added)
    return _out(session, campaign, settings.workflow_id_prefix)


@router.get("")
def list_campaigns(session: SessionDep, settings: SettingsDep) -> list[CampaignOut]:
    """List campaigns, newest first."""
    campaigns = session.exec(select(Campaign).order_by(Campaign.id.desc())).all()  # type: ignore[union-attr]
    return [_out(session, c, settings.workflow_id_prefix) for c in campaigns]


@router.get("/{campaign_id}")
def get_campaign(
    campaign_id: IdPath, session: SessionDep, settings: SettingsDep
) -> CampaignOut:
    """Get a campaign with its counts by member state and call outcome."""
    return _out(session, _campaign(session, campaign_id), settings.workflow_id_prefix)


@router.get("/{campaign_id}/members")
def list_members(
    campaign_id: IdPath,
    session: SessionDep,
    settings: SettingsDep,
    state: Annotated[
        MemberState | None, Query(description="Only members in this state")
    ] = None,
    after: Annotated[
        int, Query(ge=0, description="Cursor: the last member id seen")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MemberPage:
    """List a campaign's members with their state and the reason they wait."""
    _campaign(session, campaign_id)
    query = select(CampaignMember).where(
        CampaignMember.campaign_id == campaign_id, CampaignMember.id > after
    )
    if state is not None:
        query = query.where(CampaignMember.state == state)
    rows = session.exec(query.order_by(CampaignMember.id).limit(limit)).all()
    campaign_workflow = names.campaign_workflow_id(
        campaign_id, settings.workflow_id_prefix
    )
    items = [
        MemberOut(
            id=row.id,
            contact_id=row.contact_id,
            state=row.state,
            attempts_made=row.attempts_made,
            next_attempt_at=row.next_attempt_at,
            last_outcome=row.last_outcome,
            final_outcome=row.final_outcome,
            reason=row.reason,
            workflow_id=names.contact_workflow_id(campaign_workflow, row.contact_id),
        )
        for row in rows
    ]
    return MemberPage(
        items=items, next_cursor=rows[-1].id if len(rows) == limit else None
    )


@router.post("/{campaign_id}/start")
async def start_campaign(
    campaign_id: IdPath, db: DbDep, settings: SettingsDep, temporal: TemporalDep
) -> CampaignOut:
    """Start the campaign; starting it again changes nothing."""
    campaign = await run_in_threadpool(_mark_running, db, campaign_id)
    await _start_workflow(temporal, campaign, settings)
    return await run_in_threadpool(_read, db, campaign_id, settings.workflow_id_prefix)


@router.post("/{campaign_id}/pause")
async def pause_campaign(
    campaign_id: IdPath, db: DbDep, settings: SettingsDep, temporal: TemporalDep
) -> CampaignOut:
    """Pause: no new dial starts until resume; live calls finish."""
    await run_in_threadpool(
        _set_status, db, campaign_id, CampaignStatus.PAUSED, {CampaignStatus.RUNNING}
    )
    await _signal(temporal, campaign_id, "pause", settings.workflow_id_prefix)
    return await run_in_threadpool(_read, db, campaign_id, settings.workflow_id_prefix)


@router.post("/{campaign_id}/resume")
async def resume_campaign(
    campaign_id: IdPath, db: DbDep, settings: SettingsDep, temporal: TemporalDep
) -> CampaignOut:
    """Resume a paused campaign where it stopped."""
    await run_in_threadpool(
        _set_status, db, campaign_id, CampaignStatus.RUNNING, {CampaignStatus.PAUSED}
    )
    await _signal(temporal, campaign_id, "resume", settings.workflow_id_prefix)
    return await run_in_threadpool(_read, db, campaign_id, settings.workflow_id_prefix)


@router.post("/{campaign_id}/cancel")
async def cancel_campaign(
    campaign_id: IdPath, db: DbDep, settings: SettingsDep, temporal: TemporalDep
) -> CampaignOut:
    """Cancel: no new dial starts; waiting contacts end as canceled."""
    await run_in_threadpool(
        _set_status,
        db,
        campaign_id,
        CampaignStatus.CANCELED,
        {CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.DRAFT},
    )
    await _signal(temporal, campaign_id, "cancel", settings.workflow_id_prefix)
    return await run_in_threadpool(_read, db, campaign_id, settings.workflow_id_prefix)


# The handlers above are async because they talk to Temporal; their database
# work runs in the thread pool, because a blocking wait for SQLite's lock on
# the event loop would stall every other request, including the one that
# holds the lock.
def _read(db: Database, campaign_id: int, prefix: str) -> CampaignOut:
    with db.session() as session:
        return _out(session, _campaign(session, campaign_id), prefix)


def _mark_running(db: Database, campaign_id: int) -> Campaign:
    with db.session() as session:
        campaign = _campaign(session, campaign_id)
        if campaign.status in (CampaignStatus.CANCELED, CampaignStatus.FINISHED):
            raise ApiError(
                status.HTTP_409_CONFLICT,
                "campaign_closed",
                f"campaign {campaign_id} is {campaign.status} and cannot start again",
            )
        if campaign.status == CampaignStatus.DRAFT:
            campaign.status = CampaignStatus.RUNNING
            campaign.started_at = utcnow()
            session.add(campaign)
            session.commit()
        return campaign


def _require_variables(session: Session, campaign_id: int, agent: Agent) -> None:
    """Reject the campaign if a contact lacks a variable the agent's purpose uses.

    TODO(contacts): imports keep no row number per contact, so the error
    lists contact ids only, not the rows of the imported file.
    """
    wanted = placeholder_names(agent.purpose)
    if not wanted:
        return
    listed, total = members_missing_variables(session, campaign_id, wanted)
    if total == 0:
        return
    session.rollback()
    raise ApiError(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "missing_variables",
        f"{total} selected contacts lack a value for a placeholder of agent "
        f"{agent.id}'s purpose ({', '.join(wanted)}): give them the values and "
        "import again, or leave them out of the campaign",
        [{"contact_id": row.contact_id, "missing": row.missing} for row in listed],
    )


def active_contacts_for(plan_line_limit: int) -> int:
    """Contacts a campaign keeps in flight: enough to refill every line at
    once, without all of them polling the limiter for a handful of lines."""
    return max(ACTIVE_CONTACTS_MIN, ACTIVE_CONTACTS_PER_LINE * plan_line_limit)


def _check_selection(session: Session, selection: ContactSelection) -> None:
    """Reject an unknown import or contact ids rather than silently skip them."""
    if (
        selection.import_id is not None
        and session.get(ContactImport, selection.import_id) is None
    ):
        raise not_found("import", selection.import_id)
    if selection.contact_ids is not None:
        wanted = set(selection.contact_ids)
        found = set(
            session.exec(select(Contact.id).where(Contact.id.in_(wanted))).all()  # type: ignore[union-attr]
        )
        missing = sorted(wanted - found)
        if missing:
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "unknown_contacts",
                f"contacts not found: {missing[:20]}"
                + (f" and {len(missing) - 20} more" if len(missing) > 20 else ""),
                details={"missing_contact_ids": missing[:1000]},
            )


def _validate_window(settings: CampaignSettings) -> None:
    try:
        CallingWindow.parse(
            settings.window_start, settings.window_end, settings.window_days
        )
    except WindowError as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_calling_window", str(error)
        ) from error


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise not_found("campaign", campaign_id)
    return campaign


def _set_status(
    db: Database, campaign_id: int, new: str, allowed_from: set[str]
) -> None:
    with db.session() as session:
        _change_status(session, campaign_id, new, allowed_from)


def _change_status(
    session: Session, campaign_id: int, new: str, allowed_from: set[str]
) -> None:
    campaign = _campaign(session, campaign_id)
    if campaign.status == new:
        return
    if campaign.status not in allowed_from:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "invalid_transition",
            f"campaign {campaign_id} is {campaign.status}; cannot make it {new}",
        )
    campaign.status = new
    if new == CampaignStatus.CANCELED:
        campaign.finished_at = utcnow()
    session.add(campaign)
    # Committed before the signal, so the dial check sees it at once.
    session.commit()
    logger.info("Campaign %s set to %s", campaign_id, new)


async def _start_workflow(
    temporal: Client, campaign: Campaign, settings: Settings
) -> None:
    prefix = settings.workflow_id_prefix
    assert campaign.id is not None
    search_attributes = names.campaign_search_attributes(campaign.id)
    await temporal.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(
            campaign_id=campaign.id,
            settings=settings_from_dict(campaign.settings),
            max_active=active_contacts_for(settings.plan_line_limit),
        ),
        id=names.campaign_workflow_id(campaign.id, prefix),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=search_attributes,
        static_summary=f"campaign {campaign.id}",
    )


async def _signal(temporal: Client, campaign_id: int, signal: str, prefix: str) -> None:
    handle = temporal.get_workflow_handle(
        names.campaign_workflow_id(campaign_id, prefix)
    )
    try:
        await handle.signal(signal)
    except RPCError as error:
        # A campaign never started, or already closed, has no workflow: the
        # status in the database is what the dial check reads.
        logger.debug("Campaign %s has no running workflow: %s", campaign_id, error)


def _out(session: Session, campaign: Campaign, prefix: str) -> CampaignOut:
    assert campaign.id is not None
    settings = settings_from_dict(campaign.settings)
    counts = campaign_counts(
        session,
        campaign.id,
        max_attempts=settings.max_attempts,
        retry_delay=timedelta(seconds=settings.retry_delay_seconds),
    )
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        agent_id=campaign.agent_id,
        status=campaign.status,
        settings=campaign.settings,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        members=counts.members,
        members_by_state=counts.members_by_state,
        calls_placed=counts.calls_placed,
        calls_by_outcome=counts.calls_by_outcome,
        not_called_by_reason=counts.not_called_by_reason,
        waiting_by_reason=counts.waiting_by_reason,
        lines_in_use=counts.lines_in_use,
        next_attempt_at=counts.next_attempt_at,
        expected_finish_at=counts.expected_finish_at,
        workflow_id=names.campaign_workflow_id(campaign.id, prefix),
    )
