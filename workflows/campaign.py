"""A campaign: pages its members and starts one contact workflow for each."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.types import (
        CampaignInput,
        CampaignProgress,
        CampaignState,
        ContactInput,
        MemberRef,
        MembersPage,
        MembersPageInput,
        WakeInput,
    )
    from workflows import names
    from workflows.contact import ContactWorkflow

# At most this many contacts are started and not yet idle or finished. It
# keeps pending children far below Temporal's 2,000 per run and bounds the
# activities that compete for lines at once.
MAX_ACTIVE_CONTACTS = 300
# A run continues as new after starting this many children, so that no run
# has more than this many pending children and its history stays small.
MAX_STARTS_PER_RUN = 400
PAGE_SIZE = 100
# A running campaign starts more contacts once this share of its room is
# free, so that it reads members and starts children in batches rather than
# one at a time as contacts finish.
REFILL_FRACTION = 4
# A call's final status normally arrives within seconds of its end; a contact
# asks the provider itself when none has come this long after the ring
# timeout, and then every status_poll_seconds while the call is live.
STATUS_CHECK_MARGIN_SECONDS = 15
# How often a campaign with nothing to start checks the database for members
# still open, in case a contact's notice was lost.
RECONCILE_EVERY = timedelta(minutes=5)


@workflow.defn(name="CampaignWorkflow")
class CampaignWorkflow:
    @workflow.init
    def __init__(self, input: CampaignInput) -> None:
        self._input = input
        self._state = replace(input.state) if input.state else CampaignState()
        self._active = set(self._state.active)
        self._starts_this_run = 0
        self._max_starts = input.starts_per_run or MAX_STARTS_PER_RUN
        self._max_active = min(
            input.max_active or MAX_ACTIVE_CONTACTS, MAX_ACTIVE_CONTACTS
        )
        self._changed = False
        self._wake_pending = False
        self._status_pending: str | None = None
        self._reconcile_due = True
        # Contacts carried over from the previous run are checked once at
        # the start, then every RECONCILE_EVERY.
        self._slots_check_due = bool(self._active)

    @workflow.signal
    def pause(self) -> None:
        if not self._state.paused:
            workflow.logger.info("Campaign %s paused", self._input.campaign_id)
        self._state.paused = True
        self._status_pending = "paused"
        self._changed = True

    @workflow.signal
    def resume(self) -> None:
        if self._state.paused:
            workflow.logger.info("Campaign %s resumed", self._input.campaign_id)
        self._state.paused = False
        self._status_pending = "running"
        self._wake_pending = True
        self._changed = True

    @workflow.signal
    def cancel(self) -> None:
        self._state.canceled = True
        self._wake_pending = True
        self._changed = True

    @workflow.signal
    def contact_idle(self, member_id: int) -> None:
        self._active.discard(member_id)
        self._changed = True

    @workflow.signal
    def contact_finished(self, member_id: int) -> None:
        # NOTE: a notice can arrive twice if a worker dies after sending it
        # and before recording it. The count then runs ahead, which only
        # brings the database check for the campaign's end forward.
        self._active.discard(member_id)
        self._state.finished += 1
        self._changed = True

    @workflow.query
    def progress(self) -> CampaignProgress:
        return CampaignProgress(
            campaign_id=self._input.campaign_id,
            paused=self._state.paused,
            canceled=self._state.canceled,
            started=self._state.started,
            finished=self._state.finished,
            active=len(self._active),
            all_started=self._state.exhausted_pages,
        )

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignProgress:
        if input.state is None:
            workflow.logger.info("Campaign %s started", input.campaign_id)
        # The run's end drops the pending timer; no need to cancel it.
        asyncio.create_task(self._reconcile_now_and_then())
        await self._run_until_done()
        workflow.logger.info(
            "Campaign %s %s",
            input.campaign_id,
            "canceled" if self._state.canceled else "finished",
        )
        return self.progress()

    async def _run_until_done(self) -> None:
        while True:
            if self._status_pending and not self._state.canceled:
                status, self._status_pending = self._status_pending, None
                await self._set_status(status)
            if self._wake_pending:
                await self._wake_waiting_members()
            if self._state.canceled:
                await self._set_status("canceled")
                break
            if (
                self._slots_check_due
                and self._active
                and not self._state.exhausted_pages
            ):
                await self._forget_final_members()
            if self._can_start_more():
                await self._start_next_page()
                continue
            if self._state.exhausted_pages and await self._all_members_final():
                await self._set_status("finished")
                break
            if self._starts_this_run >= self._max_starts or (
                workflow.info().is_continue_as_new_suggested()
            ):
                await self._continue_as_new()
            await self._wait_for_change()

    def _can_start_more(self) -> bool:
        if self._state.paused or self._state.exhausted_pages:
            return False
        free = self._max_active - len(self._active)
        starts_left = self._max_starts - self._starts_this_run
        if free <= 0 or starts_left <= 0:
            return False
        batch = max(1, min(PAGE_SIZE, self._max_active // REFILL_FRACTION))
        return free >= min(batch, starts_left)

    async def _start_next_page(self) -> None:
        room = min(
            PAGE_SIZE,
            self._max_active - len(self._active),
            self._max_starts - self._starts_this_run,
        )
        page: MembersPage = await workflow.execute_activity(
            names.ACTIVITY_LIST_MEMBERS,
            MembersPageInput(
                campaign_id=self._input.campaign_id,
                after_member_id=self._state.cursor,
                limit=room,
            ),
            result_type=MembersPage,
            start_to_close_timeout=names.SHORT_ACTIVITY_TIMEOUT,
            retry_policy=names.DATABASE_RETRY,
        )
        # Starting the children together costs one workflow task for the
        # page, where awaiting each start would cost a round trip per child.
        await asyncio.gather(*(self._start_contact(m) for m in page.members))
        self._state.cursor = page.next_cursor
        self._state.exhausted_pages = page.done

    async def _start_contact(self, member: MemberRef) -> None:
        member_id = member.member_id
        settings = self._input.settings
        contact_input = ContactInput(
            campaign_id=self._input.campaign_id,
            member_id=member_id,
            contact_id=member.contact_id,
            parent_workflow_id=workflow.info().workflow_id,
            max_attempts=settings.max_attempts,
            retry_delay_seconds=settings.retry_delay_seconds,
            retry_outcomes=settings.retry_outcomes,
            status_check_seconds=settings.ring_timeout_seconds
            + STATUS_CHECK_MARGIN_SECONDS,
            search_attributes=self._input.search_attributes,
        )
        search_attributes = None
        if self._input.search_attributes:
            search_attributes = names.initial_search_attributes(
                self._input.campaign_id, "pending"
            )
        # Counted before the start: a contact that ends at once can report
        # in the same activation that resolves its start, and a report that
        # came before the add would leave it in the active set for good.
        self._active.add(member_id)
        self._state.started += 1
        self._starts_this_run += 1
        try:
            await workflow.start_child_workflow(
                ContactWorkflow.run,
                contact_input,
                id=names.contact_workflow_id(
                    workflow.info().workflow_id, member.contact_id
                ),
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes,
                static_summary=f"campaign {self._input.campaign_id}, member {member_id}",
            )
        except WorkflowAlreadyStartedError:
            # Started by an earlier run of this campaign; it reports as usual.
            workflow.logger.debug("Contact of member %s already started", member_id)

    async def _forget_final_members(self) -> None:
        """Drop from the active set the members the database shows as final.

        A finished contact's notice removes it, so this finds only members
        whose notice was lost, which would otherwise hold their slot for good.
        """
        self._slots_check_due = False
        final: list[int] = await workflow.execute_activity(
            names.ACTIVITY_FINAL_AMONG,
            sorted(self._active),
            result_type=list[int],
            start_to_close_timeout=names.SHORT_ACTIVITY_TIMEOUT,
            retry_policy=names.DATABASE_RETRY,
        )
        if final:
            workflow.logger.warning(
                "Campaign %s: %s finished contacts never reported; slots freed",
                self._input.campaign_id,
                len(final),
            )
        self._active.difference_update(final)

    async def _all_members_final(self) -> bool:
        # Ask the database only when every started contact has reported, or
        # now and then in case a report was lost.
        if self._state.finished < self._state.started and not self._reconcile_due:
            return False
        self._reconcile_due = False
        unfinished: int = await workflow.execute_activity(
            names.ACTIVITY_COUNT_UNFINISHED,
            self._input.campaign_id,
            result_type=int,
            start_to_close_timeout=names.SHORT_ACTIVITY_TIMEOUT,
            retry_policy=names.DATABASE_RETRY,
        )
        return unfinished == 0

    def _describe(self) -> None:
        """Say in words what the campaign is doing, for the web UI."""
        state = self._state
        text = (
            f"{state.started} contacts started, {state.finished} finished, "
            f"{len(self._active)} in flight"
        )
        if state.paused:
            text = "paused: " + text
        elif state.exhausted_pages:
            text += "; every contact started, waiting for the rest to finish"
        workflow.set_current_details(text)

    async def _wait_for_change(self) -> None:
        self._describe()
        self._changed = False
        await workflow.wait_condition(lambda: self._changed)

    async def _reconcile_now_and_then(self) -> None:
        # One timer for the whole run: a timeout on every wait would add a
        # timer and its cancellation to the history at each change.
        while True:
            await workflow.sleep(RECONCILE_EVERY)
            self._reconcile_due = True
            self._slots_check_due = True
            self._changed = True

    async def _wake_waiting_members(self) -> None:
        self._wake_pending = False
        await workflow.execute_activity(
            names.ACTIVITY_WAKE_MEMBERS,
            WakeInput(self._input.campaign_id, workflow.info().workflow_id),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=names.DATABASE_RETRY,
        )

    async def _set_status(self, status: str) -> None:
        await workflow.execute_activity(
            names.ACTIVITY_SET_CAMPAIGN_STATUS,
            args=[self._input.campaign_id, status],
            start_to_close_timeout=names.SHORT_ACTIVITY_TIMEOUT,
            retry_policy=names.DATABASE_RETRY,
        )

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.active = sorted(self._active)
        workflow.continue_as_new(replace(self._input, state=self._state))
