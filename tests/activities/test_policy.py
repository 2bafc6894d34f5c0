"""The member's next step after an attempt: answered, failed, exhausted or retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.policy import next_step
from activities.types import Outcome

NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
RETRIED = (Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL)


def step(outcome, attempts_made=1, permanent=False):
    return next_step(
        outcome,
        permanent_failure=permanent,
        attempts_made=attempts_made,
        max_attempts=3,
        retry_outcomes=RETRIED,
        retry_delay_seconds=4 * 3600,
        now=NOW,
    )


@pytest.mark.parametrize("outcome", RETRIED)
def test_retryable_outcome_waits_the_delay(outcome):
    result = step(outcome, attempts_made=2)

    assert result.state == "waiting"
    assert result.retry_at == NOW + timedelta(hours=4)
    assert result.reason == f"retry 3 of 3 after {outcome}"


def test_answered_ends_even_on_first_attempt():
    assert (step(Outcome.ANSWERED).state, step(Outcome.ANSWERED).retry_at) == (
        "answered",
        None,
    )


def test_last_attempt_exhausts():
    assert step(Outcome.NO_ANSWER, attempts_made=3).state == "exhausted"


@pytest.mark.parametrize("outcome", [Outcome.VOICEMAIL_LEFT, Outcome.NO_ANSWER])
def test_unanswered_not_retried_exhausts(outcome):
    result = next_step(
        outcome,
        permanent_failure=False,
        attempts_made=1,
        max_attempts=3,
        retry_outcomes=(Outcome.BUSY,),
        retry_delay_seconds=60,
        now=NOW,
    )

    assert (result.state, result.retry_at) == ("exhausted", None)


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.FAX, None])
def test_outcome_not_retried_fails(outcome):
    assert step(outcome).state == "failed"


def test_permanent_failure_is_not_retried_whatever_the_outcome():
    assert step(Outcome.NO_ANSWER, permanent=True).state == "failed"
