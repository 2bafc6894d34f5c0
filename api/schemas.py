"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from activities.types import CampaignSettings, Outcome

RETRYABLE = {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL, Outcome.FAILED}


class AgentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    from_number: str = Field(description="The number the agent calls from, E.164.")
    voice_url: str = Field(description="Where the provider connects an answered call.")
    purpose: str = Field(default="", description="Who is calling, why, what next.")


class AgentOut(BaseModel):
    id: int
    name: str
    from_number: str
    voice_url: str
    purpose: str
    created_at: datetime


class CampaignSettingsIn(BaseModel):
    """Campaign settings; each one left out takes the product's default."""

    max_attempts: int = Field(default=CampaignSettings.max_attempts, ge=1, le=20)
    retry_delay_seconds: int = Field(
        default=CampaignSettings.retry_delay_seconds, ge=1, le=30 * 86400
    )
    retry_outcomes: list[str] = Field(
        default_factory=lambda: list(CampaignSettings.retry_outcomes)
    )
    window_start: str = CampaignSettings.window_start
    window_end: str = CampaignSettings.window_end
    window_days: list[int] = Field(
        default_factory=lambda: list(CampaignSettings.window_days)
    )
    ring_timeout_seconds: int = Field(
        default=CampaignSettings.ring_timeout_seconds, ge=5, le=600
    )
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    require_consent: bool = CampaignSettings.require_consent
    machine_detection: bool = CampaignSettings.machine_detection

    @field_validator("retry_outcomes")
    @classmethod
    def _known_outcomes(cls, values: list[str]) -> list[str]:
        unknown = sorted(set(values) - RETRYABLE)
        if unknown:
            raise ValueError(
                f"unknown outcomes {unknown}; allowed: {sorted(RETRYABLE)}"
            )
        return values

    @field_validator("window_days")
    @classmethod
    def _weekdays(cls, values: list[int]) -> list[int]:
        if not values or any(day < 1 or day > 7 for day in values):
            raise ValueError("window_days must list ISO weekdays 1 (Monday) to 7")
        return sorted(set(values))


class ContactSelection(BaseModel):
    """Which contacts the campaign calls: one import, a list of ids, or all."""

    import_id: int | None = None
    contact_ids: list[int] | None = None
    all: bool = False


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    agent_id: int
    contacts: ContactSelection
    settings: CampaignSettingsIn = Field(default_factory=CampaignSettingsIn)


class CampaignOut(BaseModel):
    id: int
    name: str
    agent_id: int
    status: str
    settings: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    members: int
    members_by_state: dict[str, int]
    calls_placed: int
    calls_by_outcome: dict[str, int]
    not_called_by_reason: dict[str, int]
    waiting_by_reason: dict[str, int]
    lines_in_use: int
    next_attempt_at: datetime | None
    workflow_id: str


class AttemptOut(BaseModel):
    id: int
    campaign_id: int
    attempt_no: int
    status: str
    outcome: str | None
    answered_by: str | None
    provider_sid: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    dialed_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    ring_seconds: int | None
    talk_seconds: int | None


class ContactOut(BaseModel):
    id: int
    phone: str
    extension: str
    name: str | None
    variables: dict[str, str]
    timezone: str | None
    state: str | None
    consent_basis: str | None
    consent_source: str | None
    consent_at: datetime | None
    do_not_call: bool = False
    attempts: list[AttemptOut] = []


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: int | None


class RejectedRowOut(BaseModel):
    row: int
    reason: str
    value: str | None = None


class ImportOut(BaseModel):
    import_id: int
    rows: int
    created: int
    updated: int
    duplicates: list[dict[str, int]]
    rejected: list[RejectedRowOut]


class MemberOut(BaseModel):
    """A contact's state in one campaign, and why it waits or was not called."""

    id: int
    contact_id: int
    state: str
    attempts_made: int
    next_attempt_at: datetime | None
    last_outcome: str | None
    final_outcome: str | None
    reason: str | None
    workflow_id: str


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: int | None
