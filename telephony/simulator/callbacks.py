"""Signed status callbacks, sent like Twilio sends them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


@dataclass(frozen=True)
class Callback:
    call_sid: str
    url: str
    method: str
    params: dict[str, str]
    sequence_number: int
    final: bool


@dataclass
class CallbackStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    duplicated: int = 0
    reordered: int = 0
    dropped: int = 0
    # Delivered callbacks per CallStatus, for tests that count them.
    by_status: dict[str, int] = field(default_factory=dict)


class CallbackSender:
    """Send callbacks over one shared HTTP client, retrying when the receiver
    is unreachable or responds with a 5xx status."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        auth_token: str,
        *,
        attempts: int,
        retry_seconds: float,
        max_in_flight: int,
        stats: CallbackStats,
    ) -> None:
        self._client = client
        # httpcore scans every waiting request each time a connection frees
        # up, so thousands of requests queued in its pool cost quadratic time.
        # Waiting here instead keeps its queue short.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._validator = RequestValidator(auth_token)
        self._attempts = max(1, attempts)
        self._retry_seconds = retry_seconds
        self.stats = stats

    async def send(self, callback: Callback) -> bool:
        """Deliver one callback and return whether the receiver accepted it."""
        url, body, signature = self._signed_request(callback)
        headers = {SIGNATURE_HEADER: signature}
        delay = self._retry_seconds
        for attempt in range(1, self._attempts + 1):
            problem = await self._try_once(callback.method, url, body, headers)
            if problem is None:
                self._count_delivered(callback)
                return True
            if attempt == self._attempts or not problem.retryable:
                logger.warning(
                    "status callback %s for call %s failed after %s attempts: %s",
                    callback.sequence_number,
                    callback.call_sid,
                    attempt,
                    problem.reason,
                )
                self.stats.failed += 1
                return False
            self.stats.retried += 1
            await asyncio.sleep(delay)
            delay *= 2
        return False

    def _signed_request(
        self, callback: Callback
    ) -> tuple[str, dict[str, str] | None, str]:
        # Twilio signs the exact URL it requests. For POST it signs the
        # StatusCallback URL plus the form parameters. For GET it signs the URL
        # with the parameters in its query string, and no body parameters.
        if callback.method == "GET":
            separator = "&" if "?" in callback.url else "?"
            url = callback.url + separator + urlencode(callback.params)
            return url, None, self._validator.compute_signature(url, {})
        signature = self._validator.compute_signature(callback.url, callback.params)
        return callback.url, callback.params, signature

    async def _try_once(
        self,
        method: str,
        url: str,
        body: dict[str, str] | None,
        headers: dict[str, str],
    ) -> _Problem | None:
        try:
            async with self._in_flight:
                response = await self._client.request(
                    method, url, data=body, headers=headers
                )
        except httpx.HTTPError as error:
            return _Problem(f"{type(error).__name__}: {error}", retryable=True)
        if response.status_code >= 500:
            return _Problem(f"HTTP {response.status_code}", retryable=True)
        if response.status_code >= 400:
            return _Problem(f"HTTP {response.status_code}", retryable=False)
        return None

    def _count_delivered(self, callback: Callback) -> None:
        self.stats.delivered += 1
        status = callback.params["CallStatus"]
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1


@dataclass(frozen=True)
class _Problem:
    reason: str
    retryable: bool
