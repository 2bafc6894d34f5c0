"""Parsing of the create request's form, with Twilio's validation errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastapi import status

from telephony.scenario import (
    DEFAULT_RING_TIMEOUT,
    DETECT_ENABLE,
    DETECT_MESSAGE_END,
    INVALID_NUMBER_ERROR,
)
from telephony.simulator.calls import (
    CALLS_RESOURCE_ERROR,
    INVALID_URL_ERROR,
    MISSING_FROM_ERROR,
    MISSING_TO_ERROR,
    SimulatorError,
)
from telephony.simulator.player import COMPLETED_EVENT


@dataclass(frozen=True)
class CreateRequest:
    to: str
    from_: str
    url: str
    status_callback: str | None
    status_callback_method: str
    callback_events: frozenset[str]
    timeout: int
    machine_detection: str | None
    send_digits: str | None
    # TimeLimit: the call ends after this many seconds of talk.
    time_limit: int | None = None


def parse_create_form(
    fields: Mapping[str, str], events: Sequence[str]
) -> CreateRequest:
    """Validate the create parameters as Twilio does, or raise SimulatorError.

    ``events`` contains every value of the repeated StatusCallbackEvent parameter.
    """
    to = fields.get("To", "").strip()
    from_ = fields.get("From", "").strip()
    url = fields.get("Url", "").strip()
    if not to:
        raise _bad_request(MISSING_TO_ERROR, "No 'To' number is specified")
    if not from_:
        raise _bad_request(MISSING_FROM_ERROR, "A 'From' phone number is required")
    if to == from_:
        # Twilio rejects a call from a number to itself as an invalid To.
        raise _bad_request(
            INVALID_NUMBER_ERROR, f"The 'To' number {to} is the same as 'From'"
        )
    if not url and not fields.get("Twiml"):
        raise _bad_request(INVALID_URL_ERROR, "Url or Twiml is required")
    method = fields.get("StatusCallbackMethod", "POST").upper()
    if method not in ("GET", "POST"):
        raise _bad_request(
            CALLS_RESOURCE_ERROR, f"StatusCallbackMethod {method!r} is not GET or POST"
        )
    detection = fields.get("MachineDetection") or None
    if detection not in (None, DETECT_ENABLE, DETECT_MESSAGE_END):
        raise _bad_request(
            CALLS_RESOURCE_ERROR,
            f"MachineDetection {detection!r} is not Enable or DetectMessageEnd",
        )
    return CreateRequest(
        to=to,
        from_=from_,
        url=url,
        status_callback=fields.get("StatusCallback") or None,
        status_callback_method=method,
        callback_events=_callback_events(events),
        timeout=_timeout(fields.get("Timeout")),
        machine_detection=detection,
        send_digits=fields.get("SendDigits") or None,
        time_limit=_time_limit(fields.get("TimeLimit")),
    )


def _callback_events(values: Sequence[str]) -> frozenset[str]:
    # Repeated parameters are what the REST API takes; TwiML separates the
    # names with spaces, so accept both.
    names = {name for value in values for name in value.split()}
    return frozenset(names | {COMPLETED_EVENT})


def _timeout(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_RING_TIMEOUT
    try:
        return int(raw)
    except ValueError:
        raise _bad_request(
            CALLS_RESOURCE_ERROR, f"Timeout {raw!r} is not a whole number of seconds"
        ) from None


def _time_limit(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise _bad_request(
            CALLS_RESOURCE_ERROR,
            f"TimeLimit {raw!r} is not a positive whole number of seconds",
        )
    return int(raw)


def _bad_request(code: int, message: str) -> SimulatorError:
    return SimulatorError(status.HTTP_400_BAD_REQUEST, code, message)
