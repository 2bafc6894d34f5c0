"""ContactWorkflow's retries on the time-skipping server, with stand-in activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import step_after
from activities.types import (
    AttemptResult,
    CallFinished,
    CampaignNotice,
    ContactInput,
    Decision,
    FinishAttemptInput,
    Outcome,
    PlaceCallInput,
    PlaceCallResult,
)
from workflows import names
from workflows.contact import ContactWorkflow

PERMANENT = "permanent"


@dataclass
class FakeCalls:
    """Activities that play a scripted list of outcomes and log every dial."""

    outcomes: list[str]
    final_at_once: bool = True
    # The attempt reads as live until the provider is asked.
    live_until_polled: bool = False
    dials: list[datetime] = field(default_factory=list)
    asked_provider: list[bool] = field(default_factory=list)
    # (member state, retry time) returned after each final attempt.
    steps: list[tuple[str | None, datetime | None]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @activity.defn(name=names.ACTIVITY_PLACE_CALL)
    async def place_call(self, input: PlaceCallInput) -> PlaceCallResult:
        self.dials.append(activity.info().current_attempt_scheduled_time)
        return PlaceCallResult(
            decision=Decision.DIALED,
            attempt_id=input.attempt_no,
            attempt_final=self.final_at_once,
        )

    @activity.defn(name=names.ACTIVITY_FINISH_ATTEMPT)
    async def finish_attempt(self, input: FinishAttemptInput) -> AttemptResult:
        self.asked_provider.append(input.ask_provider)
        if self.live_until_polled and not input.ask_provider:
            return AttemptResult(
                attempt_id=input.attempt_id, final=False, status="queued"
            )
        scripted = self.outcomes[min(input.attempt_id, len(self.outcomes)) - 1]
        permanent = scripted == PERMANENT
        outcome = Outcome.FAILED if permanent else scripted
        step = step_after(input, outcome, permanent_failure=permanent)
        self.steps.append((step.state, step.retry_at))
        return AttemptResult(
            attempt_id=input.attempt_id,
            final=True,
            status="failed" if permanent else "completed",
            outcome=outcome,
            permanent_failure=permanent,
            member_state=step.state,
            retry_at=step.retry_at,
            reason=step.reason,
        )

    @activity.defn(name=names.ACTIVITY_NOTIFY_CAMPAIGN)
    async def notify_campaign(self, notice: CampaignNotice) -> bool:
        self.notices.append(notice.signal)
        return False

    def activities(self) -> list:
        return [self.place_call, self.finish_attempt, self.notify_campaign]


def contact_input(member_id: int = 1, **overrides: object) -> ContactInput:
    values: dict[str, object] = {
        "campaign_id": 1,
        "member_id": member_id,
        "contact_id": member_id,
        "parent_workflow_id": "campaign-1-absent",
        "search_attributes": False,
    }
    values.update(overrides)
    return ContactInput(**values)  # type: ignore[arg-type]


async def run_contact(
    env: WorkflowEnvironment, task_queue: str, fake: FakeCalls, **overrides: object
):
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ContactWorkflow],
        activities=fake.activities(),
    ):
        return await env.client.execute_workflow(
            ContactWorkflow.run,
            contact_input(**overrides),
            id=f"contact-{task_queue}",
            task_queue=task_queue,
        )


def gaps(dials: list[datetime]) -> list[timedelta]:
    return [later - earlier for earlier, later in pairwise(dials)]


async def test_never_answered_dialled_three_times(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.NO_ANSWER] * 3)

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert len(fake.dials) == 3
    assert [round(g.total_seconds() / 3600) for g in gaps(fake.dials)] == [4, 4]
    assert result.state == "exhausted"
    assert result.last_outcome == Outcome.NO_ANSWER
    # Each retry waited until the time the attempt's end recorded.
    assert [state for state, _ in fake.steps] == ["waiting", "waiting", "exhausted"]
    for (_, retry_at), dial in zip(fake.steps, fake.dials[1:]):
        assert retry_at is not None
        assert timedelta(0) <= dial - retry_at < timedelta(minutes=1)


async def test_answered_on_second_attempt_stops(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.NO_ANSWER, Outcome.ANSWERED, Outcome.ANSWERED])

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert len(fake.dials) == 2
    assert result.state == "answered"
    # The 4-hour wait frees the contact's slot once; the end is reported.
    assert fake.notices == [names.SIGNAL_CONTACT_IDLE, names.SIGNAL_CONTACT_FINISHED]


async def test_mixed_retryable_outcomes_make_three_dials(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.BUSY, Outcome.VOICEMAIL, Outcome.NO_ANSWER])

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert len(fake.dials) == 3
    assert result.state == "exhausted"
    assert result.last_outcome == Outcome.NO_ANSWER


async def test_invalid_number_dialled_once(time_skipping_env, task_queue):
    fake = FakeCalls([PERMANENT])

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert len(fake.dials) == 1
    assert result.state == "failed"
    assert fake.notices == [names.SIGNAL_CONTACT_FINISHED]


async def test_retry_delay_setting_is_used(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.NO_ANSWER] * 2)

    await run_contact(
        time_skipping_env, task_queue, fake, max_attempts=2, retry_delay_seconds=5
    )

    assert len(fake.dials) == 2
    assert gaps(fake.dials)[0] < timedelta(minutes=1)


async def test_lost_final_status_asks_provider(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.ANSWERED], final_at_once=False)

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert result.state == "answered"
    assert fake.asked_provider == [True]


async def test_final_status_signal_ends_wait(time_skipping_env, task_queue):
    fake = FakeCalls([Outcome.ANSWERED], final_at_once=False)
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[ContactWorkflow],
        activities=fake.activities(),
    ):
        handle: WorkflowHandle = await time_skipping_env.client.start_workflow(
            ContactWorkflow.run,
            contact_input(),
            id=f"contact-{task_queue}",
            task_queue=task_queue,
        )
        await handle.signal(ContactWorkflow.call_finished, CallFinished(1, "completed"))
        result = await handle.result()

    assert result.state == "answered"
    assert fake.asked_provider == [False]


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.CANCELED])
async def test_outcome_not_retried_ends_failed(time_skipping_env, task_queue, outcome):
    fake = FakeCalls([outcome])

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert len(fake.dials) == 1
    assert result.state == "failed"


async def test_signal_then_live_call_asks_provider_after_poll(
    time_skipping_env, task_queue
):
    # The webhook signalled the end, but the database still shows the call
    # live: the contact counts the signal once, then waits and polls the
    # provider.
    fake = FakeCalls([Outcome.ANSWERED], final_at_once=True, live_until_polled=True)

    result = await run_contact(time_skipping_env, task_queue, fake)

    assert result.state == "answered"
    assert fake.asked_provider == [False, True]
