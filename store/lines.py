"""The plan's lines as leases in the database, shared by every worker.

A line is held by one attempt from just before its dial until its final
status. Counting and taking a line happen in one transaction that holds a
lock (SQLite's write lock, or a PostgreSQL advisory lock), so two workers can
never both take the last line. A lease that outlives its expiry is no longer
counted, which gives back the lines of a holder that vanished.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, text
from sqlmodel import Session, select

from store.models import DialPacer, LineLease, LineWaiter

# A campaign counts as wanting lines while one of its contacts asked for one
# this recently; contacts waiting for a line ask every fraction of a second.
WAITER_FRESH = timedelta(seconds=3)

# Any fixed number works; it names the lock that serialises taking lines.
LINES_ADVISORY_LOCK = 7_341_001


def lock_lines(session: Session) -> None:
    """Serialise line counting for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(
            text("SELECT pg_advisory_xact_lock(:key)").bindparams(
                key=LINES_ADVISORY_LOCK
            )
        )
    # SQLite transactions begin with BEGIN IMMEDIATE (store.db), which already
    # holds the database's single write lock.


def lines_in_use(
    session: Session, now: datetime, campaign_id: int | None = None
) -> int:
    query = (
        select(func.count()).select_from(LineLease).where(LineLease.expires_at > now)
    )
    if campaign_id is not None:
        query = query.where(LineLease.campaign_id == campaign_id)
    return session.exec(query).one()


def has_free_line(
    session: Session,
    now: datetime,
    *,
    plan_limit: int,
    campaign_id: int,
    campaign_limit: int | None,
) -> bool:
    """Tell whether this campaign may take a line now.

    A free line goes to any campaign while no other campaign waits for one.
    While several wait, each may hold up to an equal share of the plan's
    lines, so a campaign with many ready contacts cannot starve the others.
    """
    if lines_in_use(session, now) >= plan_limit:
        return False
    mine = lines_in_use(session, now, campaign_id)
    if campaign_limit is not None and mine >= campaign_limit:
        return False
    others = _campaigns_waiting(session, now, exclude=campaign_id)
    if not others:
        return True
    return mine < math.ceil(plan_limit / (others + 1))


def _campaigns_waiting(session: Session, now: datetime, *, exclude: int) -> int:
    return session.exec(
        select(func.count(func.distinct(LineWaiter.campaign_id))).where(
            LineWaiter.seen_at > now - WAITER_FRESH,
            LineWaiter.campaign_id != exclude,
        )
    ).one()


def note_waiting(
    session: Session, *, member_id: int, campaign_id: int, now: datetime
) -> None:
    """Record that this member is ready to dial but found no line."""
    session.merge(LineWaiter(member_id=member_id, campaign_id=campaign_id, seen_at=now))


def stop_waiting(session: Session, member_id: int) -> None:
    session.exec(delete(LineWaiter).where(LineWaiter.member_id == member_id))  # type: ignore[call-overload]


def take_dial_slot(session: Session, now: datetime, calls_per_second: float) -> bool:
    """Take the next call-creation slot, shared by every worker.

    Returns False when the last slot was taken less than 1/calls_per_second
    ago; the caller tries again shortly.
    """
    interval = timedelta(seconds=1.0 / calls_per_second)
    pacer = session.get(DialPacer, 1)
    if pacer is None:
        session.add(DialPacer(id=1, next_dial_at=now + interval))
        return True
    if pacer.next_dial_at > now:
        return False
    pacer.next_dial_at = now + interval
    session.add(pacer)
    return True


def take_line(
    session: Session,
    *,
    attempt_id: int,
    campaign_id: int,
    now: datetime,
    lease: timedelta,
) -> None:
    session.add(
        LineLease(
            attempt_id=attempt_id,
            campaign_id=campaign_id,
            acquired_at=now,
            expires_at=now + lease,
        )
    )


def release_line(session: Session, attempt_id: int | None) -> None:
    if attempt_id is not None:
        session.exec(delete(LineLease).where(LineLease.attempt_id == attempt_id))


def purge_expired(session: Session, now: datetime) -> int:
    result = session.exec(delete(LineLease).where(LineLease.expires_at <= now))
    return result.rowcount or 0
