"""Usage: the month's AI calls against the plan.

An AI call is a call answered by a person and connected to the agent.
Unanswered dials, busy lines, failures and voicemails, left or not, do not
count.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import func
from sqlmodel import col, select

from activities.types import Outcome
from api.deps import ApiKey, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import UsageOut
from store.models import CallAttempt, utcnow
from store.reports import CallRoute
from telephony.outcome import Route

router = APIRouter(prefix="/usage", tags=["usage"], dependencies=[ApiKey])

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@router.get("")
def get_usage(
    session: SessionDep,
    settings: SettingsDep,
    month: Annotated[
        str | None,
        Query(description="Month as YYYY-MM in UTC, the current month if left out."),
    ] = None,
) -> UsageOut:
    """Count the month's AI calls and their minutes against the plan."""
    start, end = month_bounds(month or utcnow().strftime("%Y-%m"))
    talk = func.coalesce(CallAttempt.talk_seconds, 0)
    # Whole minutes per call, rounded up, in integer arithmetic that SQLite
    # and PostgreSQL both do the same way.
    minutes = (talk + 59) // 60
    calls, seconds, rounded = session.exec(
        select(func.count(), func.sum(talk), func.sum(minutes))
        .select_from(CallAttempt)
        .join(CallRoute, col(CallRoute.attempt_id) == col(CallAttempt.id))
        .where(
            CallRoute.route == Route.AGENT,
            CallAttempt.outcome == Outcome.ANSWERED,
            col(CallAttempt.created_at) >= start,
            col(CallAttempt.created_at) < end,
        )
    ).one()
    included = settings.plan_included_ai_calls
    return UsageOut(
        month=start.strftime("%Y-%m"),
        ai_calls=calls,
        ai_call_seconds=int(seconds or 0),
        ai_call_minutes=int(rounded or 0),
        included_ai_calls=included,
        remaining_ai_calls=max(0, included - calls),
        over_plan_ai_calls=max(0, calls - included),
    )


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """Return the first moment of ``month`` (YYYY-MM) and of the next, in UTC."""
    match = _MONTH.fullmatch(month.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "invalid_month",
            f"invalid month {month!r}: use YYYY-MM, such as 2026-12",
        )
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end
