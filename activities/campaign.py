"""Activities the campaign workflow uses: paging members, status, wake-ups."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, update
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.types import (
    FINAL_MEMBER_STATES,
    CampaignNotice,
    MemberRef,
    MembersPage,
    MembersPageInput,
    MemberState,
    WakeInput,
)
from store.db import Database
from store.models import Campaign, CampaignMember, CampaignStatus, utcnow
from workflows import names

logger = logging.getLogger(__name__)

WAKE_BATCH = 50
_OPEN_STATES = [
    state.value for state in MemberState if state not in FINAL_MEMBER_STATES
]


class CampaignActivities:
    def __init__(self, db: Database, client: Client) -> None:
        self._db = db
        self._client = client

    @activity.defn(name=names.ACTIVITY_LIST_MEMBERS)
    def list_members(self, input: MembersPageInput) -> MembersPage:
        """Return the next page of members by id, after the cursor."""
        with self._db.read_session() as session:
            rows = session.exec(
                select(CampaignMember.id, CampaignMember.contact_id)
                .where(
                    CampaignMember.campaign_id == input.campaign_id,
                    CampaignMember.id > input.after_member_id,
                )
                .order_by(CampaignMember.id)
                .limit(input.limit)
            ).all()
        members = [MemberRef(member_id=m, contact_id=c) for m, c in rows]
        cursor = members[-1].member_id if members else input.after_member_id
        return MembersPage(
            members=members, next_cursor=cursor, done=len(rows) < input.limit
        )

    @activity.defn(name=names.ACTIVITY_COUNT_UNFINISHED)
    def count_unfinished(self, campaign_id: int) -> int:
        with self._db.read_session() as session:
            return session.exec(
                select(func.count())
                .select_from(CampaignMember)
                .where(
                    CampaignMember.campaign_id == campaign_id,
                    CampaignMember.state.in_(_OPEN_STATES),  # type: ignore[attr-defined]
                )
            ).one()

    @activity.defn(name=names.ACTIVITY_FINAL_AMONG)
    def final_among(self, member_ids: list[int]) -> list[int]:
        """Return the ids among ``member_ids`` whose members are final."""
        with self._db.read_session() as session:
            return list(
                session.exec(
                    select(CampaignMember.id).where(
                        CampaignMember.id.in_(member_ids),  # type: ignore[union-attr]
                        CampaignMember.state.not_in(_OPEN_STATES),  # type: ignore[attr-defined]
                    )
                ).all()
            )

    @activity.defn(name=names.ACTIVITY_SET_CAMPAIGN_STATUS)
    def set_campaign_status(self, campaign_id: int, status: str) -> None:
        with self._db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                return
            # The API marks a campaign canceled before it signals the workflow,
            # so the members below are ended even when the status already is.
            closed = (CampaignStatus.CANCELED, CampaignStatus.FINISHED)
            if campaign.status not in closed:
                campaign.status = status
                if status in closed:
                    campaign.finished_at = utcnow()
                session.add(campaign)
            if status == CampaignStatus.CANCELED:
                session.exec(
                    update(CampaignMember)
                    .where(
                        CampaignMember.campaign_id == campaign_id,
                        CampaignMember.state.in_(  # type: ignore[attr-defined]
                            [MemberState.PENDING, MemberState.WAITING]
                        ),
                    )
                    .values(state=MemberState.CANCELED, reason="campaign canceled")
                )
            session.commit()
        logger.info("Campaign %s is now %s", campaign_id, status)

    @activity.defn(name=names.ACTIVITY_WAKE_MEMBERS)
    async def wake_members(self, input: WakeInput) -> int:
        """Signal every waiting contact of the campaign to check again now."""
        members = await asyncio.to_thread(self._waiting_contacts, input.campaign_id)
        woken = 0
        for start in range(0, len(members), WAKE_BATCH):
            batch = members[start : start + WAKE_BATCH]
            await asyncio.gather(
                *(self._wake(input.campaign_workflow_id, c) for c in batch)
            )
            woken += len(batch)
            activity.heartbeat(woken)
        return woken

    @activity.defn(name=names.ACTIVITY_NOTIFY_CAMPAIGN)
    async def notify_campaign(self, notice: CampaignNotice) -> bool:
        """Signal the campaign's current run, or return False if no run is open."""
        handle = self._client.get_workflow_handle(notice.campaign_workflow_id)
        try:
            await handle.signal(notice.signal, notice.member_id)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            # The campaign was cancelled or terminated, so the notice has no reader.
            logger.info(
                "Campaign %s not found; %s of member %s not delivered",
                notice.campaign_workflow_id,
                notice.signal,
                notice.member_id,
            )
            return False
        return True

    def _waiting_contacts(self, campaign_id: int) -> list[int]:
        with self._db.session() as session:
            return list(
                session.exec(
                    select(CampaignMember.contact_id).where(
                        CampaignMember.campaign_id == campaign_id,
                        CampaignMember.state.in_(  # type: ignore[attr-defined]
                            [MemberState.WAITING, MemberState.CANCELED]
                        ),
                    )
                ).all()
            )

    async def _wake(self, campaign_workflow_id: str, contact_id: int) -> None:
        workflow_id = names.contact_workflow_id(campaign_workflow_id, contact_id)
        try:
            await self._client.get_workflow_handle(workflow_id).signal("wake")
        except RPCError as error:
            # Finished or never started: nothing to wake.
            logger.debug("Could not wake %s: %s", workflow_id, error)
