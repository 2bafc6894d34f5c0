"""Simulated calls and their Twilio JSON representation."""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from telephony.scenario import ExpectedCall
from telephony.simulator.callbacks import Callback

API_VERSION = "2010-04-01"
API_PREFIX = f"/{API_VERSION}/Accounts"

QUEUED = "queued"
RINGING = "ringing"
IN_PROGRESS = "in-progress"
COMPLETED = "completed"
CANCELED = "canceled"
FINAL_STATUSES = frozenset({COMPLETED, "busy", "failed", "no-answer", CANCELED})

# Twilio error codes the simulator returns.
AUTHENTICATE_ERROR = 20003
NOT_FOUND_ERROR = 20404
TOO_MANY_REQUESTS_ERROR = 20429
CALLS_RESOURCE_ERROR = 21200
MISSING_TO_ERROR = 21201
INVALID_URL_ERROR = 21205
MISSING_FROM_ERROR = 21213
INVALID_CALL_STATE_ERROR = 21220

# SipResponseCode that Twilio reports with each final status.
SIP_RESPONSE_CODES = {
    COMPLETED: 200,
    "busy": 486,
    "no-answer": 487,
    CANCELED: 487,
    "failed": 500,
}


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Format a time as Twilio does, for example ``Tue, 31 Aug 2010 20:36:28 +0000``."""
    if moment is None:
        return None
    return format_datetime(moment.replace(microsecond=0))


@dataclass
class CallVoice:
    """What an answered call's TwiML did, and what the stand-in agent saw.

    Filled only while the simulator plays the agent (SimulatorConfig.agent).
    """

    # Documents requested: the call's Url, then each <Redirect>.
    documents: int = 0
    # "say: <text>" or "play: <url>" for each <Say> and <Play>, in order.
    played: list[str] = field(default_factory=list)
    hung_up: bool = False
    error: str | None = None
    # Where <Start><Recording> asked for the recording status callback.
    recording_callback_url: str | None = None
    recording_callback_method: str = "POST"
    recording_sid: str | None = None
    recording_callback_status: int | None = None
    agent_connected: bool = False
    context: dict[str, Any] | None = None
    context_status: int | None = None
    report_status: int | None = None


@dataclass
class SimCall:
    """One call and its progress; changed only on the simulator's event loop.

    NOTE: start_time, end_time and date_updated are wall-clock times, while
    duration is in scenario seconds, so with a time_scale other than 1 the
    duration does not equal end_time minus the answer time.
    """

    index: int
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    status_callback_method: str
    callback_events: frozenset[str]
    machine_detection: str | None
    send_digits: str | None
    timeout: int
    expected: ExpectedCall
    date_created: datetime
    # Wall-clock seconds per scenario second, fixed when the call is created.
    time_scale: float = 1.0
    # TimeLimit from the create request: the maximum scenario seconds of talk.
    time_limit: int | None = None
    # Wall-clock seconds the call waits in the queue before it is dialled.
    queue_seconds: float = 0.0
    status: str = QUEUED
    date_updated: datetime | None = None
    start_time: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    answered_by: str | None = None
    duration: int | None = None
    next_sequence_number: int = 0
    player: asyncio.Task[None] | None = None
    # The last callback delivery of this call; the next one waits for it so
    # callbacks leave in order unless a fault reorders them.
    last_delivery: asyncio.Task[None] | None = None
    held_callbacks: list[Callback] = field(default_factory=list)
    voice: CallVoice = field(default_factory=CallVoice)

    def talk_seconds(self) -> float:
        """Return the scenario's talk time, cut to the call's TimeLimit."""
        if self.time_limit is None:
            return self.expected.talk_seconds
        return min(self.expected.talk_seconds, float(self.time_limit))

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def uri(self) -> str:
        return f"{API_PREFIX}/{self.account_sid}/Calls/{self.sid}.json"

    def to_resource(self) -> dict[str, Any]:
        """Return the call as Twilio's Call resource JSON."""
        base = self.uri.removesuffix(".json")
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "annotation": None,
            "answered_by": self.answered_by,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "direction": "outbound-api",
            "duration": None if self.duration is None else str(self.duration),
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": str(math.ceil(self.queue_seconds * 1000)),
            "status": self.status,
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": self.uri,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "events": f"{base}/Events.json",
            },
        }

    def summary(self) -> dict[str, Any]:
        """Return the fields the control API lists for a call."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "status": self.status,
            "outcome": self.expected.outcome,
            "answered_by": self.answered_by,
            "send_digits": self.send_digits,
            "machine_detection": self.machine_detection,
            "timeout": self.timeout,
            "time_limit": self.time_limit,
            "date_created": self.date_created.isoformat(),
            "duration": self.duration,
            "voice": asdict(self.voice),
        }


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Return an error body in Twilio's shape, which the SDK turns into
    TwilioRestException with ``code``."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class SimulatorError(Exception):
    """A request the simulator rejects, carried to Twilio's error shape."""

    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return twilio_error(self.http_status, self.code, self.message)
