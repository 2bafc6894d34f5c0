"""The next state of a campaign member after one attempt ends.

The activity that records the end of an attempt applies this in the same
transaction as the attempt's final status, and returns it to the workflow,
which sleeps until the retry time or finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from activities.types import FinishAttemptInput, MemberState, Outcome

# Outcomes of a call that worked but reached no one who talked to the agent.
UNANSWERED_OUTCOMES = frozenset(
    {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL, Outcome.VOICEMAIL_LEFT}
)


@dataclass(frozen=True)
class NextStep:
    state: str
    # Set for a retry: the earliest time of the next attempt.
    retry_at: datetime | None = None
    # Why the contact waits; no personal data.
    reason: str | None = None


def next_step(
    outcome: str | None,
    *,
    permanent_failure: bool,
    attempts_made: int,
    max_attempts: int,
    retry_outcomes: tuple[str, ...],
    retry_delay_seconds: int,
    now: datetime,
) -> NextStep:
    """Decide between answered, failed, exhausted and a retry after a delay.

    A call that reached no one, or left the voicemail message, ends the
    member as exhausted once the campaign retries it no more, whether the
    attempts ran out or the campaign does not retry that outcome. Failed
    means the call itself failed.
    """
    if outcome == Outcome.ANSWERED:
        return NextStep(MemberState.ANSWERED)
    if permanent_failure or outcome not in UNANSWERED_OUTCOMES:
        return NextStep(MemberState.FAILED)
    if outcome not in retry_outcomes or attempts_made >= max_attempts:
        return NextStep(MemberState.EXHAUSTED)
    return NextStep(
        MemberState.WAITING,
        retry_at=now + timedelta(seconds=retry_delay_seconds),
        reason=f"retry {attempts_made + 1} of {max_attempts} after {outcome}",
    )


def step_after(
    input: FinishAttemptInput, outcome: str | None, *, permanent_failure: bool
) -> NextStep:
    """Decide the next step with the contact's retry settings from ``input``."""
    return next_step(
        outcome,
        permanent_failure=permanent_failure,
        attempts_made=input.attempts_made,
        max_attempts=input.max_attempts,
        retry_outcomes=input.retry_outcomes,
        retry_delay_seconds=input.retry_delay_seconds,
        now=input.now,
    )
