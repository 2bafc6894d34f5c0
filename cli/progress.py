"""Following a running campaign with a live progress bar."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from activities.types import FINAL_MEMBER_STATES, MemberState
from cli.client import ApiClient

POLL_SECONDS = 0.5
# The run ends once every open contact waits at least this long for its next
# attempt; the campaign carries on in the stack.
LONG_WAIT = timedelta(minutes=2)


def follow_campaign(
    client: ApiClient, campaign_id: int, *, console: Console, quiet: bool
) -> dict[str, Any]:
    """Poll the campaign until every contact is final or waits for long."""
    progress = Progress(
        TextColumn("[bold]contacts"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        disable=quiet,
        transient=False,
    )
    with progress:
        campaign = client.get_campaign(campaign_id)
        task = progress.add_task("campaign", total=campaign["members"], detail="")
        while True:
            campaign = client.get_campaign(campaign_id)
            progress.update(task, completed=_done(campaign), detail=_detail(campaign))
            if _settled(campaign):
                return campaign
            time.sleep(POLL_SECONDS)


def _done(campaign: dict[str, Any]) -> int:
    states = campaign["members_by_state"]
    return sum(count for state, count in states.items() if state in FINAL_MEMBER_STATES)


def _detail(campaign: dict[str, Any]) -> str:
    outcomes = ", ".join(
        f"{name} {count}"
        for name, count in sorted(campaign["calls_by_outcome"].items())
    )
    return f"calls live {campaign['lines_in_use']}  {outcomes}"


def _settled(campaign: dict[str, Any]) -> bool:
    if campaign["status"] in ("finished", "canceled"):
        return True
    states = campaign["members_by_state"]
    busy = states.get(MemberState.PENDING, 0) + states.get(MemberState.DIALING, 0)
    if busy or campaign["lines_in_use"]:
        return False
    if not states.get(MemberState.WAITING):
        return _done(campaign) == campaign["members"]
    next_at = campaign["next_attempt_at"]
    if next_at is None:
        return False
    when = datetime.fromisoformat(next_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when - datetime.now(UTC) > LONG_WAIT
