"""CampaignWorkflow keeps its slots for contacts still in flight, with stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import step_after
from activities.types import (
    AttemptResult,
    CampaignInput,
    CampaignNotice,
    CampaignSettings,
    ContactInput,
    Decision,
    FinishAttemptInput,
    MemberRef,
    MembersPage,
    MembersPageInput,
    Outcome,
    PlaceCallInput,
    PlaceCallResult,
    WakeInput,
)
from tests.conftest import BIN_DIR
from workflows import names
from workflows.campaign import CampaignWorkflow
from workflows.contact import ContactWorkflow


@dataclass
class FakeCampaign:
    """A campaign of ``members`` whose every call connects at once."""

    members: int
    finished: set[int] = field(default_factory=set)
    # Ids the database would show as final though their notice never came.
    silently_final: set[int] = field(default_factory=set)
    final_among_calls: list[list[int]] = field(default_factory=list)

    @activity.defn(name=names.ACTIVITY_LIST_MEMBERS)
    async def list_members(self, input: MembersPageInput) -> MembersPage:
        first = input.after_member_id + 1
        last = min(self.members, input.after_member_id + input.limit)
        refs = [MemberRef(member_id=i, contact_id=i) for i in range(first, last + 1)]
        return MembersPage(members=refs, next_cursor=last, done=last >= self.members)

    @activity.defn(name=names.ACTIVITY_COUNT_UNFINISHED)
    async def count_unfinished(self, campaign_id: int) -> int:
        return self.members - len(self.finished | self.silently_final)

    @activity.defn(name=names.ACTIVITY_FINAL_AMONG)
    async def final_among(self, member_ids: list[int]) -> list[int]:
        self.final_among_calls.append(member_ids)
        return sorted(set(member_ids) & (self.finished | self.silently_final))

    @activity.defn(name=names.ACTIVITY_SET_CAMPAIGN_STATUS)
    async def set_campaign_status(self, campaign_id: int, status: str) -> None:
        return None

    @activity.defn(name=names.ACTIVITY_WAKE_MEMBERS)
    async def wake_members(self, input: WakeInput) -> int:
        return 0

    @activity.defn(name=names.ACTIVITY_NOTIFY_CAMPAIGN)
    async def notify_campaign(self, notice: CampaignNotice) -> bool:
        handle = activity.client().get_workflow_handle(notice.campaign_workflow_id)
        await handle.signal(notice.signal, notice.member_id)
        return True

    @activity.defn(name=names.ACTIVITY_PLACE_CALL)
    async def place_call(self, input: PlaceCallInput) -> PlaceCallResult:
        return PlaceCallResult(
            decision=Decision.DIALED, attempt_id=input.member_id, attempt_final=True
        )

    @activity.defn(name=names.ACTIVITY_FINISH_ATTEMPT)
    async def finish_attempt(self, input: FinishAttemptInput) -> AttemptResult:
        self.finished.add(input.member_id)
        step = step_after(input, Outcome.ANSWERED, permanent_failure=False)
        return AttemptResult(
            attempt_id=input.attempt_id,
            final=True,
            status="completed",
            outcome=Outcome.ANSWERED,
            member_state=step.state,
        )

    def activities(self) -> list:
        return [
            self.list_members,
            self.count_unfinished,
            self.final_among,
            self.set_campaign_status,
            self.wake_members,
            self.place_call,
            self.finish_attempt,
            self.notify_campaign,
        ]


async def run_campaign(
    env, task_queue: str, fake: FakeCampaign, contact=ContactWorkflow, **input_fields
):
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[CampaignWorkflow, contact],
        activities=fake.activities(),
    ):
        return await env.client.execute_workflow(
            CampaignWorkflow.run,
            CampaignInput(
                campaign_id=1,
                settings=CampaignSettings(),
                search_attributes=False,
                **input_fields,
            ),
            id=f"campaign-{task_queue}",
            task_queue=task_queue,
        )


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server for one test.

    After a campaign here, the session's shared server stopped skipping time
    to the timers of later tests, so each campaign test gets its own.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN_DIR / "temporal-test-server")
    )
    yield env
    await env.shutdown()


async def test_instant_contacts_all_finish(own_env, task_queue):
    # Contacts that end at once report while their start is still resolving;
    # each must leave the active set, or the campaign runs out of slots.
    fake = FakeCampaign(members=120)

    progress = await run_campaign(
        own_env, task_queue, fake, max_active=8, starts_per_run=30
    )

    assert progress.started == 120
    assert progress.finished == 120
    assert progress.active == 0
    assert fake.finished == set(range(1, 121))


@workflow.defn(name="ContactWorkflow", sandboxed=False)
class SilentContact:
    """A contact that never reports to its campaign."""

    @workflow.run
    async def run(self, input: ContactInput) -> None:
        await workflow.wait_condition(lambda: False)


async def test_lost_notices_free_slots(own_env, task_queue):
    members = 20
    fake = FakeCampaign(members=members, silently_final=set(range(1, members + 1)))

    progress = await run_campaign(
        own_env, task_queue, fake, contact=SilentContact, max_active=8
    )

    assert progress.started == members
    assert progress.finished == 0
    assert fake.final_among_calls[0] == list(range(1, 9))
