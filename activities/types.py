"""Inputs and results that cross the Temporal boundary.

Only ids, counts, times and reasons travel through Temporal: never a phone
number or a name. Plain dataclasses keep the workflow sandbox free of the
database models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class MemberState(StrEnum):
    """A contact's state within one campaign."""

    PENDING = "pending"
    WAITING = "waiting"
    DIALING = "dialing"
    ANSWERED = "answered"
    EXHAUSTED = "exhausted"
    FAILED = "failed"
    DO_NOT_CALL = "do_not_call"
    NOT_CALLED = "not_called"
    CANCELED = "canceled"


FINAL_MEMBER_STATES = frozenset(
    {
        MemberState.ANSWERED,
        MemberState.EXHAUSTED,
        MemberState.FAILED,
        MemberState.DO_NOT_CALL,
        MemberState.NOT_CALLED,
        MemberState.CANCELED,
    }
)


class Decision:
    """What the check before a dial decided."""

    DIALED = "dialed"
    WAIT = "wait"
    NEVER = "never"


class Outcome:
    """Result of one attempt, decided from the final status and who answered."""

    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    # The campaign's voicemail message was played to an answering machine.
    VOICEMAIL_LEFT = "voicemail_left"
    # A fax machine answered: the number is never retried.
    FAX = "fax"


@dataclass(frozen=True)
class CampaignSettings:
    max_attempts: int = 3
    retry_delay_seconds: int = 4 * 3600
    retry_outcomes: tuple[str, ...] = (
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.VOICEMAIL,
    )
    window_start: str = "09:00"
    window_end: str = "20:00"
    # ISO weekday numbers, Monday = 1.
    window_days: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    ring_timeout_seconds: int = 25
    max_concurrent_calls: int | None = None
    require_consent: bool = True
    machine_detection: bool = True
    # Whether an AnsweredBy of "unknown" counts as a person (connected to the
    # agent) or as a machine (a voicemail).
    unknown_is_answered: bool = True
    # The message left on an answering machine once its greeting ends: text
    # for text to speech, or the URL of an audio file. At most one is set.
    voicemail_text: str | None = None
    voicemail_audio_url: str | None = None
    # Whether an attempt that left the message is retried. The workflow reads
    # retry_outcomes, so the API adds voicemail_left to it when this is true.
    retry_voicemail_left: bool = True
    # Record calls connected to the agent. Where the law requires it, the
    # agent must say that the call is recorded.
    record_calls: bool = True


@dataclass(frozen=True)
class CampaignInput:
    campaign_id: int
    settings: CampaignSettings = field(default_factory=lambda: CampaignSettings())
    search_attributes: bool = True
    # Children started per run before continuing as new; None means the
    # workflow's own default. Tests lower it to force continue-as-new.
    starts_per_run: int | None = None
    # Contacts started and not yet idle or finished; None means the
    # workflow's own default.
    max_active: int | None = None
    # Carried across continue-as-new; a fresh start leaves the defaults.
    state: CampaignState | None = None


@dataclass
class CampaignState:
    cursor: int = 0
    exhausted_pages: bool = False
    paused: bool = False
    canceled: bool = False
    started: int = 0
    finished: int = 0
    # Member ids started by this campaign and not yet idle or finished.
    active: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class MembersPageInput:
    campaign_id: int
    after_member_id: int
    limit: int


@dataclass(frozen=True)
class MemberRef:
    member_id: int
    contact_id: int


@dataclass(frozen=True)
class MembersPage:
    members: list[MemberRef]
    next_cursor: int
    done: bool


@dataclass(frozen=True)
class ContactInput:
    campaign_id: int
    member_id: int
    contact_id: int
    parent_workflow_id: str
    max_attempts: int = 3
    retry_delay_seconds: int = 4 * 3600
    retry_outcomes: tuple[str, ...] = (
        Outcome.NO_ANSWER,
        Outcome.BUSY,
        Outcome.VOICEMAIL,
    )
    # First look at the provider when no final status has arrived, then the
    # interval between further looks while the call is still live.
    status_check_seconds: int = 25 + 15
    status_poll_seconds: int = 60
    # Off only where the server has no custom search attributes registered.
    search_attributes: bool = True
    # Carried across continue-as-new.
    attempts_made: int = 0


@dataclass(frozen=True)
class PlaceCallInput:
    campaign_id: int
    member_id: int
    attempt_no: int


@dataclass(frozen=True)
class PlaceCallResult:
    decision: str
    attempt_id: int | None = None
    wait_until: datetime | None = None
    # Why the contact waits or is never called; no personal data.
    reason: str | None = None
    member_state: str | None = None
    # Set when the provider refused the call at creation, so no status
    # callback will follow.
    attempt_final: bool = False


@dataclass(frozen=True)
class FinishAttemptInput:
    attempt_id: int
    member_id: int
    # Attempts made so far, this one included.
    attempts_made: int
    max_attempts: int
    retry_outcomes: tuple[str, ...]
    retry_delay_seconds: int
    # The workflow's time, from which a retry is timed.
    now: datetime
    # True when the wait for the final status timed out and the provider must
    # be asked.
    ask_provider: bool = False


@dataclass(frozen=True)
class AttemptResult:
    attempt_id: int
    final: bool
    status: str
    outcome: str | None = None
    permanent_failure: bool = False
    # Set once the attempt is final: the member's state as recorded, and
    # for a retry its time and reason.
    member_state: str | None = None
    retry_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CallFinished:
    """Signal from the webhook: the provider reported a final status."""

    attempt_id: int
    status: str


@dataclass(frozen=True)
class WakeInput:
    campaign_id: int
    campaign_workflow_id: str


@dataclass(frozen=True)
class CampaignNotice:
    """A signal from a contact to its campaign's current run."""

    campaign_workflow_id: str
    signal: str
    member_id: int


# Results and queries of the workflows. They live here, outside the workflow
# modules, because the sandbox runs a workflow's module again for every run.


@dataclass(frozen=True)
class ContactResult:
    member_id: int
    state: str
    attempts_made: int
    last_outcome: str | None = None


@dataclass(frozen=True)
class ContactProgress:
    member_id: int
    state: str
    attempts_made: int
    max_attempts: int
    wait_until: datetime | None
    reason: str | None


@dataclass(frozen=True)
class CampaignProgress:
    campaign_id: int
    paused: bool
    canceled: bool
    started: int
    finished: int
    active: int
    all_started: bool
