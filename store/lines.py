"""The plan's lines as leases in the database, shared by every worker.

A line is held by one attempt from just before its dial until its final
status. Counting and taking a line happen in one transaction that holds a
lock (SQLite's write lock, or a PostgreSQL advisory lock), so two workers can
never both take the last line. A lease that outlives its expiry is no longer
counted, which gives back the lines of a holder that vanished.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, text
from sqlmodel import Session, select

from store.models import LineLease

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
    if lines_in_use(session, now) >= plan_limit:
        return False
    if campaign_limit is not None:
        return lines_in_use(session, now, campaign_id) < campaign_limit
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
