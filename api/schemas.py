"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.types import CampaignSettings, Outcome

RETRYABLE = {
    Outcome.NO_ANSWER,
    Outcome.BUSY,
    Outcome.VOICEMAIL,
    Outcome.VOICEMAIL_LEFT,
    Outcome.FAILED,
}
MAX_LABEL_LENGTH = 64


# The largest id a database integer column holds; larger ones are rejected as
# invalid instead of failing in the database driver.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    model_config = ConfigDict(extra="forbid")

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
    unknown_is_answered: bool = Field(
        default=CampaignSettings.unknown_is_answered,
        description="Whether an AnsweredBy of unknown counts as a person.",
    )
    voicemail_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="Message spoken to an answering machine once its greeting ends.",
    )
    voicemail_audio_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Audio file played to an answering machine instead of text.",
    )
    retry_voicemail_left: bool = Field(
        default=CampaignSettings.retry_voicemail_left,
        description="Whether an attempt that left the voicemail message is retried.",
    )
    record_calls: bool = Field(
        default=CampaignSettings.record_calls,
        description="Record calls connected to the agent.",
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_voicemail_left(cls, data: Any) -> Any:
        # Stored settings list voicemail_left among retry_outcomes, so settings
        # read back from the API can be sent again.
        if not isinstance(data, dict):
            return data
        outcomes = data.get("retry_outcomes")
        if not isinstance(outcomes, list) or Outcome.VOICEMAIL_LEFT not in outcomes:
            return data
        kept = [outcome for outcome in outcomes if outcome != Outcome.VOICEMAIL_LEFT]
        return {"retry_voicemail_left": True, **data, "retry_outcomes": kept}

    @model_validator(mode="after")
    def _voicemail(self) -> Self:
        if self.voicemail_text and self.voicemail_audio_url:
            raise ValueError("give voicemail_text or voicemail_audio_url, not both")
        url = self.voicemail_audio_url
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"voicemail_audio_url must be an http(s) URL, got {url!r}")
        # The contact workflow retries the outcomes listed in retry_outcomes.
        left = Outcome.VOICEMAIL_LEFT
        if self.retry_voicemail_left and left not in self.retry_outcomes:
            self.retry_outcomes.append(left)
        return self

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

    model_config = ConfigDict(extra="forbid")

    import_id: Id | None = None
    contact_ids: list[Id] | None = Field(default=None, min_length=1)
    all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> ContactSelection:
        given = [
            name
            for name, value in (
                ("import_id", self.import_id),
                ("contact_ids", self.contact_ids),
                ("all", self.all or None),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of import_id, contact_ids or all; got "
                + (", ".join(given) or "none")
            )
        return self


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    agent_id: Id
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
    expected_finish_at: datetime | None = Field(
        description="Estimate of when the last open contact ends; an upper bound."
    )
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
    result: CallResultOut | None = Field(
        default=None, description="What the agent reported, for answered calls."
    )


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


class AgentCreated(AgentOut):
    token: str = Field(
        description="Bearer token for the agent's call endpoints, shown only once."
    )


class AgentTokenOut(BaseModel):
    agent_id: int
    token: str = Field(description="The new bearer token; older ones stop working.")


class CallContextOut(BaseModel):
    """What the agent needs to hold a call: ids, variables and its purpose."""

    call_sid: str
    attempt_id: int
    attempt_no: int
    campaign_id: int
    contact_id: int
    variables: dict[str, str]
    purpose: str = Field(description="The agent's purpose, placeholders filled.")
    missing_variables: list[str] = Field(
        description="Placeholders left unfilled because the contact has no value."
    )


class CallReportIn(BaseModel):
    """The agent's report once a call ends."""

    transcript: str | None = Field(default=None, max_length=1_000_000)
    summary: str | None = Field(default=None, max_length=20_000)
    labels: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Outcome labels, such as do-not-call, stored lowercased.",
    )
    recording_url: str | None = Field(default=None, max_length=2000)

    @field_validator("labels")
    @classmethod
    def _normalise_labels(cls, values: list[str]) -> list[str]:
        labels = [value.strip().lower() for value in values]
        invalid = [label for label in labels if not 0 < len(label) <= MAX_LABEL_LENGTH]
        if invalid:
            raise ValueError(
                f"labels must have 1 to {MAX_LABEL_LENGTH} characters, got {invalid}"
            )
        return list(dict.fromkeys(labels))

    @field_validator("recording_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"recording_url must be an http(s) URL, got {value!r}")
        return value


class CallReportOut(BaseModel):
    attempt_id: int
    stored: bool = Field(description="False when the same report was stored before.")
    labels: list[str]
    do_not_call: bool = Field(
        description="Whether a label put the number on the do-not-call list."
    )


class CallResultOut(BaseModel):
    """What the agent and Twilio reported about an answered call."""

    transcript: str | None
    summary: str | None
    labels: list[str]
    recording_url: str | None
    recording_seconds: int | None
    reported_at: datetime | None


class NamedRef(BaseModel):
    id: int
    name: str | None


class InboxContact(NamedRef):
    phone: str


class InboxEntry(BaseModel):
    attempt_id: int
    attempt_no: int
    call_sid: str | None
    contact: InboxContact
    campaign: NamedRef
    agent: NamedRef
    called_at: datetime = Field(description="When the engine placed the call.")
    answered_at: datetime | None
    ended_at: datetime | None
    talk_seconds: int | None
    result: CallResultOut | None


class InboxPage(BaseModel):
    items: list[InboxEntry]
    next_cursor: int | None = Field(
        description="Pass as before_id for the next, older page; null at the end."
    )


class UsageOut(BaseModel):
    month: str
    ai_calls: int = Field(description="Calls answered by a person and connected.")
    ai_call_seconds: int
    ai_call_minutes: int = Field(
        description="Talk time, each call rounded up to whole minutes."
    )
    included_ai_calls: int
    remaining_ai_calls: int
    over_plan_ai_calls: int
