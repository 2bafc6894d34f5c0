"""Database tables. Workflows never import this module: they pass dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from activities.types import FINAL_MEMBER_STATES, MemberState
from store.types import UtcDateTime

__all__ = ["FINAL_MEMBER_STATES", "MemberState"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(UtcDateTime(), nullable=nullable, index=index),
    )


class ConsentBasis(StrEnum):
    EXISTING_CUSTOMER = "existing_customer"
    INQUIRY = "inquiry"
    EXPRESS = "express"
    EXPRESS_WRITTEN = "express_written"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELED = "canceled"
    FINISHED = "finished"


class Contact(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("phone", "extension", name="uq_contact_phone"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(index=True, max_length=20)
    # Empty string rather than NULL so that the unique key also holds on SQLite.
    extension: str = Field(default="", max_length=20)
    name: str | None = None
    variables: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    timezone: str | None = None
    state: str | None = Field(default=None, max_length=2)
    consent_basis: str | None = None
    consent_source: str | None = None
    consent_at: datetime | None = _when()
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    from_number: str = Field(max_length=20)
    voice_url: str
    purpose: str = ""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    agent_id: int = Field(foreign_key="agent.id", index=True)
    status: str = Field(default=CampaignStatus.DRAFT, index=True)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()


class CampaignMember(SQLModel, table=True):
    __tablename__ = "campaign_member"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_member_contact"),
        Index("ix_member_campaign_state", "campaign_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    state: str = Field(default=MemberState.PENDING)
    attempts_made: int = 0
    # When the next attempt is expected, for people reading the campaign.
    next_attempt_at: datetime | None = _when()
    # The earliest moment the retry delay allows the next attempt; unlike
    # next_attempt_at, a pause or a busy line never moves it.
    retry_due_at: datetime | None = _when()
    last_outcome: str | None = None
    final_outcome: str | None = None
    # Why the contact waits or was not called, in words, without personal data.
    reason: str | None = None
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )


class CallAttempt(SQLModel, table=True):
    __tablename__ = "call_attempt"
    __table_args__ = (
        UniqueConstraint("member_id", "attempt_no", name="uq_attempt_member_no"),
        Index("ix_attempt_phone_created", "phone", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="campaign_member.id")
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    attempt_no: int
    phone: str = Field(max_length=20)
    # "creating" until the provider accepts the call, then the provider's status.
    status: str = "creating"
    provider_sid: str | None = Field(default=None, unique=True, max_length=64)
    answered_by: str | None = None
    outcome: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    last_sequence: int = -1
    ring_seconds: int | None = None
    talk_seconds: int | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )
    dialed_at: datetime | None = _when()
    answered_at: datetime | None = _when()
    ended_at: datetime | None = _when()


class CallEvent(SQLModel, table=True):
    """One status callback from the provider, stored once."""

    __tablename__ = "call_event"
    __table_args__ = (
        UniqueConstraint(
            "provider_sid", "status", "sequence_number", name="uq_event_callback"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int | None = Field(default=None, foreign_key="call_attempt.id")
    provider_sid: str = Field(max_length=64, index=True)
    status: str
    sequence_number: int = -1
    answered_by: str | None = None
    payload: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON))
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )


class LineLease(SQLModel, table=True):
    """A line of the plan, held by one attempt from dial to final status."""

    __tablename__ = "line_lease"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(unique=True)
    campaign_id: int = Field(index=True)
    acquired_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )
    expires_at: datetime = Field(
        sa_column=Column(UtcDateTime(), nullable=False, index=True)
    )


class LineWaiter(SQLModel, table=True):
    """A contact ready to dial that found no free line, seen at ``seen_at``.

    The limiter reads these to share lines fairly between campaigns.
    """

    __tablename__ = "line_waiter"

    member_id: int = Field(primary_key=True)
    campaign_id: int = Field(index=True)
    seen_at: datetime = Field(
        sa_column=Column(UtcDateTime(), nullable=False, index=True)
    )


class DialPacer(SQLModel, table=True):
    """The earliest moment the next call may be created, across all workers."""

    __tablename__ = "dial_pacer"

    id: int = Field(default=1, primary_key=True)
    next_dial_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class DoNotCall(SQLModel, table=True):
    __tablename__ = "do_not_call"

    phone: str = Field(primary_key=True, max_length=20)
    source: str = "api"
    note: str | None = None
    added_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
