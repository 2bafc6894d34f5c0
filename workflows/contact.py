"""One contact's calls in one campaign: dial, wait for the end, retry or stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import (
        FINAL_MEMBER_STATES,
        AttemptResult,
        CallFinished,
        CampaignNotice,
        ContactInput,
        ContactProgress,
        ContactResult,
        Decision,
        FinishAttemptInput,
        MemberState,
        PlaceCallInput,
        PlaceCallResult,
    )
    from workflows import names


@workflow.defn(name="ContactWorkflow")
class ContactWorkflow:
    @workflow.init
    def __init__(self, input: ContactInput) -> None:
        self._input = input
        self._attempts = input.attempts_made
        self._finished: dict[int, str] = {}
        self._woken = False
        self._state = MemberState.PENDING
        self._wait_until: datetime | None = None
        self._reason: str | None = None
        self._told_parent_idle = False

    @workflow.signal
    def call_finished(self, signal: CallFinished) -> None:
        self._finished[signal.attempt_id] = signal.status

    @workflow.signal
    def wake(self) -> None:
        """End a wait early so the next check runs now (resume, cancel, DNC)."""
        self._woken = True

    @workflow.query
    def progress(self) -> ContactProgress:
        return ContactProgress(
            member_id=self._input.member_id,
            state=self._state,
            attempts_made=self._attempts,
            max_attempts=self._input.max_attempts,
            wait_until=self._wait_until,
            reason=self._reason,
        )

    @workflow.run
    async def run(self, input: ContactInput) -> ContactResult:
        result = await self._call_until_final()
        await self._tell_parent(names.SIGNAL_CONTACT_FINISHED)
        workflow.logger.info(
            "Contact finished: campaign %s member %s state %s after %s attempts",
            input.campaign_id,
            input.member_id,
            result.state,
            result.attempts_made,
        )
        return result

    async def _call_until_final(self) -> ContactResult:
        while True:
            self._continue_as_new_if_suggested()
            placed = await self._place_call()
            if placed.decision == Decision.NEVER:
                self._reason = placed.reason
                self._set_state(placed.member_state or MemberState.NOT_CALLED)
                return self._result(None)
            if placed.decision == Decision.WAIT:
                await self._wait(placed.wait_until, placed.reason)
                continue
            assert placed.attempt_id is not None
            self._attempts += 1
            self._set_state(MemberState.DIALING)
            attempt = await self._await_final_status(placed)
            state = attempt.member_state or MemberState.FAILED
            if state in FINAL_MEMBER_STATES:
                self._reason = None
                self._set_state(state, outcome=attempt.outcome)
                return self._result(attempt.outcome)
            await self._wait(attempt.retry_at, attempt.reason)

    async def _place_call(self) -> PlaceCallResult:
        return await workflow.execute_activity(
            names.ACTIVITY_PLACE_CALL,
            PlaceCallInput(
                campaign_id=self._input.campaign_id,
                member_id=self._input.member_id,
                attempt_no=self._attempts + 1,
            ),
            result_type=PlaceCallResult,
            start_to_close_timeout=names.PLACE_CALL_TIMEOUT,
            heartbeat_timeout=names.PLACE_CALL_HEARTBEAT,
            retry_policy=names.PLACE_CALL_RETRY,
        )

    async def _await_final_status(self, placed: PlaceCallResult) -> AttemptResult:
        """Wait for the webhook's signal that the call ended, then record the end.

        Without the signal in time, the activity fetches the call from the
        provider, and again every status_poll_seconds while the call is live.
        """
        attempt_id = placed.attempt_id
        assert attempt_id is not None
        timeout = timedelta(seconds=self._input.status_check_seconds)
        arrived = placed.attempt_final
        while True:
            if not arrived:
                arrived = await self._wait_for_signal(
                    lambda: attempt_id in self._finished, timeout
                )
            # Each signal counts once. If the database still shows the call
            # as live, the next round waits and then fetches it from the
            # provider.
            self._finished.pop(attempt_id, None)
            result = await workflow.execute_local_activity(
                names.ACTIVITY_FINISH_ATTEMPT,
                FinishAttemptInput(
                    attempt_id=attempt_id,
                    member_id=self._input.member_id,
                    attempts_made=self._attempts,
                    max_attempts=self._input.max_attempts,
                    retry_outcomes=self._input.retry_outcomes,
                    retry_delay_seconds=self._input.retry_delay_seconds,
                    now=workflow.now(),
                    ask_provider=not arrived,
                ),
                result_type=AttemptResult,
                start_to_close_timeout=names.SHORT_ACTIVITY_TIMEOUT,
                retry_policy=names.DATABASE_RETRY,
            )
            if result.final:
                return result
            arrived = False
            timeout = timedelta(seconds=self._input.status_poll_seconds)

    async def _wait(self, until: datetime | None, reason: str | None) -> None:
        """Sleep on a durable timer until ``until``, or until woken."""
        self._set_state(MemberState.WAITING)
        self._wait_until = until
        self._reason = reason
        self._describe(waiting=True)
        if until is None:
            raise ApplicationError(
                "a wait decision came without a time", non_retryable=True
            )
        # Cleared before any await, so a wake-up that arrives meanwhile counts.
        self._woken = False
        delay = until - workflow.now()
        if delay > names.IDLE_AFTER:
            await self._tell_parent_idle()
        if delay > timedelta(0):
            await self._wait_for_signal(lambda: self._woken, delay)
        self._wait_until = None

    async def _wait_for_signal(self, condition, timeout: timedelta) -> bool:
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def _tell_parent_idle(self) -> None:
        if not self._told_parent_idle:
            self._told_parent_idle = True
            await self._tell_parent(names.SIGNAL_CONTACT_IDLE)

    async def _tell_parent(self, signal: str) -> None:
        # A local activity sends the signal from the worker. A signal command
        # would cost the contact one more workflow task to learn it was
        # delivered, and Temporal drops one that is sent as the run ends.
        notice = CampaignNotice(
            self._input.parent_workflow_id, signal, self._input.member_id
        )
        try:
            await workflow.execute_local_activity(
                names.ACTIVITY_NOTIFY_CAMPAIGN,
                notice,
                result_type=bool,
                start_to_close_timeout=names.NOTIFY_TIMEOUT,
                schedule_to_close_timeout=names.NOTIFY_GIVE_UP,
                retry_policy=names.NOTIFY_RETRY,
            )
        except ActivityError as error:
            # The campaign also checks the database for members still open,
            # so a lost notice delays nothing for long.
            workflow.logger.warning(
                "Could not notify campaign %s of member %s: %s",
                self._input.campaign_id,
                self._input.member_id,
                error,
            )

    def _describe(self, *, waiting: bool = False) -> None:
        """Say in words what the contact is doing, for the web UI."""
        attempt = min(self._attempts + 1, self._input.max_attempts)
        text = f"attempt {attempt} of {self._input.max_attempts}: {self._state}"
        if waiting and self._wait_until is not None:
            until = self._wait_until.strftime("%Y-%m-%d %H:%M UTC")
            text = f"attempt {attempt} of {self._input.max_attempts}, waiting until {until}"
        if self._reason:
            text += f" ({self._reason})"
        if self._state in FINAL_MEMBER_STATES:
            text = f"{self._state} after {self._attempts} attempts"
            if self._reason:
                text += f" ({self._reason})"
        workflow.set_current_details(text)

    def _set_state(self, state: str, *, outcome: str | None = None) -> None:
        if state == self._state:
            return
        self._state = state
        self._describe()
        # Dialling lasts only as long as a call, so it gets no search
        # attribute. Each upsert adds an event to the history and a write to
        # the visibility store, and the current details show the state anyway.
        if self._input.search_attributes and state != MemberState.DIALING:
            updates = [names.MEMBER_STATE.value_set(state)]
            if outcome is not None:
                updates.append(names.LAST_OUTCOME.value_set(outcome))
            workflow.upsert_search_attributes(updates)

    def _result(self, outcome: str | None) -> ContactResult:
        return ContactResult(
            member_id=self._input.member_id,
            state=self._state,
            attempts_made=self._attempts,
            last_outcome=outcome,
        )

    def _continue_as_new_if_suggested(self) -> None:
        if workflow.info().is_continue_as_new_suggested():
            workflow.continue_as_new(replace(self._input, attempts_made=self._attempts))
