"""Outbound calls through Twilio's REST API, or the local simulator.

The provider uses the official ``twilio`` SDK. Pointing the SDK's Api domain at
another base URL is all it takes to reach the simulator, so production and
tests run the same code. Every method blocks on HTTP (the SDK uses
``requests``), so callers on an event loop run them in a thread.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.call import CallInstance, CallList

logger = logging.getLogger(__name__)

# Events sent as repeated StatusCallbackEvent parameters. Without them Twilio
# reports only "completed".
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
RATE_LIMIT_ERROR = 20429
# Twilio errors treated as permanent for the number, so the same number is not
# dialled again. 21211 is an invalid To number and 21217 a number that does
# not appear to be valid, per Twilio's error reference.
PERMANENT_NUMBER_ERRORS = frozenset({21211, 21214, 21215, 21216, 21217, 13224})
# Error for an update of a call that has already ended. NOTE: the simulator
# returns it; Twilio's code for a Status update of an ended call is unconfirmed.
INVALID_CALL_STATE_ERROR = 21220
DEFAULT_HTTP_TIMEOUT_SECONDS = 15.0
# In SendDigits each "w" waits half a second: two seconds lets the far end's
# menu start listening before the extension is dialled.
EXTENSION_PAUSE = "wwww"

_EXTENSION = re.compile(r"[0-9*#]+")
# Messages may travel into Temporal through activity failures, which must not
# carry phone numbers, and Twilio's messages quote the number.
_PHONE_NUMBER = re.compile(r"\+\d{6,15}")

_Result = TypeVar("_Result")


class ProviderError(Exception):
    """Raised when a request to the provider fails, with Twilio's error code."""

    def __init__(self, code: int | None, status: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class ProviderBusy(ProviderError):
    """Raised when the provider rejects a request with HTTP 429, unprocessed.

    Retry with backoff. The retry does not use up an attempt.
    """


class PermanentNumberError(ProviderError):
    """Raised when the number cannot be called, so retrying will not help."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, 400, message)


class ProviderUnavailable(ProviderError):
    """Raised when the request timed out or the connection failed.

    A create that ends this way may still have made a call, so look for it
    with ``find_calls`` before dialling again.
    """

    def __init__(self, message: str) -> None:
        super().__init__(None, None, message)


@dataclass(frozen=True)
class ProviderCall:
    sid: str
    status: str
    # human, machine_start, machine_end_*, fax or unknown; None without
    # answering-machine detection or before the call is answered.
    answered_by: str | None
    # Seconds the call was connected: None while it lasts, and None or 0
    # when it was never connected.
    duration: int | None
    date_created: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    # NOTE: always None from fetch and list, because Twilio's Call resource
    # has no error field. A failed create raises an error instead.
    error_code: int | None = None


def extension_digits(extension: str) -> str:
    """Return the SendDigits value that dials ``extension`` after a pause.

    The result is ``EXTENSION_PAUSE`` (two seconds) followed by the extension,
    for example ``"wwww12"``. Raise ValueError unless the extension contains
    only digits, ``*`` and ``#``.
    """
    cleaned = extension.strip()
    if not _EXTENSION.fullmatch(cleaned):
        raise ValueError(
            f"extension {extension!r} is invalid: use only digits, '*' and '#'"
        )
    return EXTENSION_PAUSE + cleaned


class TelephonyProvider:
    """Create, inspect and cancel calls on one Twilio account."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_url: str | None = None,
        timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
    ) -> None:
        """Connect to Twilio, or to a Twilio-compatible API at ``api_url``.

        ``timeout_seconds`` bounds each HTTP request.
        """
        http_client = TwilioHttpClient(timeout=timeout_seconds)
        self._client = Client(account_sid, auth_token, http_client=http_client)
        if api_url is not None:
            self._point_at(api_url, http_client)

    def _point_at(self, api_url: str, http_client: TwilioHttpClient) -> None:
        # The Api domain joins its base URL with each resource path.
        self._client.api.base_url = api_url.rstrip("/")
        # TWILIO_EDGE or TWILIO_REGION from the environment would rewrite the
        # host to a Twilio one, and a proxy from the environment would carry
        # local requests elsewhere.
        self._client.edge = None
        self._client.region = None
        if http_client.session is not None:
            http_client.session.trust_env = False

    @property
    def _calls(self) -> CallList:
        return self._client.api.v2010.account.calls

    def create_call(
        self,
        *,
        to: str,
        from_: str,
        voice_url: str,
        status_callback: str,
        ring_timeout: int,
        machine_detection: bool | str | None,
        send_digits: str | None,
        time_limit: int | None = None,
    ) -> str:
        """Create an outbound call and return its SID.

        ``time_limit`` is Twilio's TimeLimit: the call's maximum duration in
        seconds, after which Twilio ends it.

        Status callbacks are requested for every progress event, by POST.
        Twilio's AMD documentation says MachineDetection is ignored when
        SendDigits is given, so a call to an extension reports no AnsweredBy.
        """

        def create() -> CallInstance:
            return self._calls.create(
                to=to,
                from_=from_,
                url=voice_url,
                status_callback=status_callback,
                status_callback_event=list(STATUS_CALLBACK_EVENTS),
                status_callback_method="POST",
                timeout=ring_timeout,
                machine_detection=_machine_detection(machine_detection),
                send_digits=send_digits or values.unset,
                time_limit=values.unset if time_limit is None else time_limit,
            )

        call = _call_provider("create a call", create)
        logger.debug("created call %s", call.sid)
        return str(call.sid)

    def fetch_call(self, sid: str) -> ProviderCall:
        call = _call_provider(f"fetch call {sid}", lambda: self._calls(sid).fetch())
        return _to_provider_call(call)

    def find_calls(
        self, *, to: str, from_: str, started_after: datetime
    ) -> list[ProviderCall]:
        """Return the calls from ``from_`` to ``to`` created at or after a time.

        This finds a call whose create response was lost. Twilio filters
        StartTime by date only, and a call still queued has no start time, so
        queued calls are listed apart and the exact time is checked here
        against date_created. Queued calls are listed first: a call that
        leaves the queue between the two requests then shows up in the second.
        A naive ``started_after`` is taken as UTC.
        """
        if started_after.tzinfo is None:
            started_after = started_after.replace(tzinfo=UTC)
        # RFC 2822 times have whole seconds, so compare at that precision.
        since = started_after.astimezone(UTC).replace(microsecond=0)
        queued = self._list(
            lambda: self._calls.list(to=to, from_=from_, status="queued")
        )
        started = self._list(
            lambda: self._calls.list(to=to, from_=from_, start_time_after=since)
        )
        found: dict[str, ProviderCall] = {}
        for call in [*queued, *started]:
            created = call.date_created or call.start_time
            if created is not None and created >= since:
                found[call.sid] = call
        return sorted(found.values(), key=lambda call: call.date_created or since)

    def cancel_call(self, sid: str) -> bool:
        """Cancel a call that is queued or ringing.

        Return False when the call had already ended. A connected call is left
        to finish, as Twilio does for Status=canceled.
        """
        try:
            _call_provider(
                f"cancel call {sid}", lambda: self._calls(sid).update(status="canceled")
            )
        except ProviderError as error:
            if error.code == INVALID_CALL_STATE_ERROR:
                return False
            raise
        return True

    def _list(self, request: Callable[[], list[CallInstance]]) -> list[ProviderCall]:
        return [
            _to_provider_call(call) for call in _call_provider("list calls", request)
        ]


def _machine_detection(mode: bool | str | None) -> object:
    """Return the MachineDetection parameter: True is Enable, a string is kept."""
    if mode is True:
        return "Enable"
    if not mode:
        return values.unset
    return mode


def _call_provider(action: str, request: Callable[[], _Result]) -> _Result:
    with _provider_errors(action):
        return request()


@contextmanager
def _provider_errors(action: str) -> Iterator[None]:
    """Translate SDK and transport errors into ProviderError subclasses."""
    try:
        yield
    except TwilioRestException as error:
        raise classify_error(
            error.status, error.code, f"{action}: {error.msg}"
        ) from error
    except requests.RequestException as error:
        raise ProviderUnavailable(
            f"{action}: {type(error).__name__}: {_scrub(str(error))}"
        ) from error
    except TwilioException as error:
        # The SDK raises a bare TwilioException, carrying the response, when a
        # list page comes back with an error status.
        raise _page_error(action, error) from error


def classify_error(status: int | None, code: int | None, message: str) -> ProviderError:
    """Return the ProviderError subclass for a Twilio error response."""
    message = _scrub(message)
    if status == 429 or code == RATE_LIMIT_ERROR:
        return ProviderBusy(code, status, message)
    if code in PERMANENT_NUMBER_ERRORS:
        return PermanentNumberError(code, message)
    return ProviderError(code, status, message)


def _page_error(action: str, error: TwilioException) -> ProviderError:
    response = error.args[1] if len(error.args) > 1 else None
    status = getattr(response, "status_code", None)
    code: int | None = None
    message = str(error.args[0]) if error.args else "unknown error"
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
    except ValueError:
        body = {}
    if isinstance(body, dict):
        code = body.get("code")
        message = body.get("message", message)
    return classify_error(status, code, f"{action}: {message}")


def _scrub(message: str) -> str:
    return _PHONE_NUMBER.sub("[number]", message)


def _to_provider_call(call: CallInstance) -> ProviderCall:
    duration = call.duration
    return ProviderCall(
        sid=str(call.sid),
        status=str(call.status),
        answered_by=call.answered_by or None,
        duration=int(duration) if duration not in (None, "") else None,
        date_created=call.date_created,
        start_time=call.start_time,
        end_time=call.end_time,
    )
