"""The simulator's calls, counters and request handling, free of HTTP details."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import status

from telephony.scenario import (
    INVALID_NUMBER_ERROR,
    ExpectedCall,
    Scenario,
    expected_call,
)
from telephony.simulator.agent import CallVoicePlayer
from telephony.simulator.callbacks import CallbackSender, CallbackStats
from telephony.simulator.calls import (
    API_PREFIX,
    AUTHENTICATE_ERROR,
    CALLS_RESOURCE_ERROR,
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    INVALID_CALL_STATE_ERROR,
    NOT_FOUND_ERROR,
    TOO_MANY_REQUESTS_ERROR,
    SimCall,
    SimulatorError,
    new_call_sid,
    utc_now,
)
from telephony.simulator.config import AgentRole, Faults, SimulatorConfig
from telephony.simulator.forms import CreateRequest
from telephony.simulator.listing import list_calls_page
from telephony.simulator.player import CallPlayer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreateResult:
    resource: dict[str, Any]
    # How long the HTTP response is held back (create_delay_seconds), and
    # whether it is held until the client gives up (drop_create_response).
    hold_seconds: float
    hold_until_disconnect: bool


class Simulator:
    """All state of one simulated Twilio account."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.scenario = config.scenario
        self._faults = config.faults
        self._rng = random.Random(config.fault_seed)
        self._rate_limit_remaining = config.faults.rate_limit_429_count
        self.callback_stats = CallbackStats()
        self._player: CallPlayer | None = None
        self._voice: CallVoicePlayer | None = None
        self._client: httpx.AsyncClient | None = None
        self._clear()

    def _clear(self) -> None:
        self.calls: dict[str, SimCall] = {}
        self.creates_by_number: Counter[str] = Counter()
        self.live_calls = 0
        self.max_live_calls = 0
        self.rate_limited = 0
        self.invalid_rejected = 0
        self._next_dispatch = 0.0

    async def start(self) -> None:
        """Open the shared HTTP client that sends callbacks."""
        # TCP_NODELAY because httpx writes headers and body separately, so
        # Nagle's algorithm would hold each body until the receiver's delayed
        # ACK (about 40 ms).
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=self.config.max_callback_connections),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # trust_env=False: a proxy from the environment must not carry
        # callbacks meant for a local receiver.
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=self.config.callback_timeout_seconds,
            trust_env=False,
        )
        sender = CallbackSender(
            self._client,
            self.config.auth_token,
            attempts=self.config.callback_attempts,
            retry_seconds=self.config.callback_retry_seconds,
            max_in_flight=self.config.max_callback_connections,
            stats=self.callback_stats,
        )
        self._voice = CallVoicePlayer(
            self._client,
            account_sid=self.config.account_sid,
            auth_token=self.config.auth_token,
            scenario=self.scenario,
            role=self.config.agent,
        )
        self._player = CallPlayer(
            sender=sender,
            faults=self._faults,
            rng=self._rng,
            on_final=self._on_final,
            voice=self._voice,
        )

    async def close(self) -> None:
        if self._player is not None:
            self._player.cancel_all()
        if self._voice is not None:
            self._voice.cancel_all()
        if self._client is not None:
            await self._client.aclose()

    @property
    def player(self) -> CallPlayer:
        if self._player is None:
            raise RuntimeError("the simulator is not started; call start() first")
        return self._player

    @property
    def voice(self) -> CallVoicePlayer:
        if self._voice is None:
            raise RuntimeError("the simulator is not started; call start() first")
        return self._voice

    @property
    def agent(self) -> AgentRole | None:
        return self.voice.role

    def set_agent(self, role: AgentRole | None) -> None:
        """Play the agent for the engine in ``role`` from now on, or stop (None)."""
        self.voice.role = role

    def find_call(self, sid: str) -> SimCall | None:
        return self.calls.get(sid)

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        self._faults = faults
        self._rate_limit_remaining = faults.rate_limit_429_count
        self.player.faults = faults

    def set_scenario(self, scenario: Scenario) -> None:
        """Replace the scenario. Calls already created keep their outcome."""
        self.scenario = scenario
        self.voice.scenario = scenario

    def reset(self) -> None:
        """Forget every call and counter. The scenario and faults stay as set."""
        self.player.cancel_all()
        self.voice.cancel_all()
        self.callback_stats = CallbackStats()
        self.player.sender.stats = self.callback_stats
        self._clear()

    def check_account(self, account_sid: str, username: str, password: str) -> None:
        """Raise SimulatorError unless the credentials open ``account_sid``."""
        valid = secrets.compare_digest(
            username, self.config.account_sid
        ) and secrets.compare_digest(password, self.config.auth_token)
        if not valid:
            raise SimulatorError(
                status.HTTP_401_UNAUTHORIZED, AUTHENTICATE_ERROR, "Authenticate"
            )
        if account_sid != self.config.account_sid:
            raise SimulatorError(
                status.HTTP_404_NOT_FOUND,
                NOT_FOUND_ERROR,
                f"The requested resource {API_PREFIX}/{account_sid} was not found",
            )

    def create_call(self, request: CreateRequest) -> CreateResult:
        """Create a call and start playing it, or raise SimulatorError."""
        if self._take_rate_limit():
            self.rate_limited += 1
            raise SimulatorError(
                status.HTTP_429_TOO_MANY_REQUESTS,
                TOO_MANY_REQUESTS_ERROR,
                "Too Many Requests",
            )
        call_index = self.creates_by_number[request.to]
        self.creates_by_number[request.to] += 1
        expected = expected_call(
            self.scenario,
            request.to,
            call_index,
            machine_detection=request.machine_detection,
            ring_timeout=request.timeout,
            send_digits=bool(request.send_digits),
        )
        if expected.error_code == INVALID_NUMBER_ERROR:
            self.invalid_rejected += 1
            raise SimulatorError(
                status.HTTP_400_BAD_REQUEST,
                INVALID_NUMBER_ERROR,
                f"The 'To' number {request.to} is not a valid phone number.",
            )
        call = self._new_call(request, expected)
        self.player.start(call)
        return CreateResult(
            resource=call.to_resource(),
            hold_seconds=self._faults.create_delay_seconds,
            hold_until_disconnect=self._chance(self._faults.drop_create_response),
        )

    def fetch_call(self, sid: str) -> dict[str, Any]:
        return self._get(sid).to_resource()

    def update_call(self, sid: str, new_status: str | None) -> dict[str, Any]:
        """End a call as Twilio's update does, or raise SimulatorError.

        ``canceled`` ends a queued or ringing call and leaves a connected one
        alone. ``completed`` hangs up a connected call. Any other field (a
        redirect) is accepted and changes nothing.

        NOTE: two answers here are guesses, not checked against Twilio:
        ``completed`` on a call not yet answered acts as ``canceled``, and any
        update of an ended call fails with error 21220.
        """
        call = self._get(sid)
        if call.is_final:
            raise SimulatorError(
                status.HTTP_400_BAD_REQUEST,
                INVALID_CALL_STATE_ERROR,
                f"Call {sid} is not in-progress: it ended with status {call.status}",
            )
        if new_status not in (None, CANCELED, COMPLETED):
            raise SimulatorError(
                status.HTTP_400_BAD_REQUEST,
                CALLS_RESOURCE_ERROR,
                f"Status {new_status!r} is invalid; expected canceled or completed",
            )
        if new_status is not None:
            self._end_early(call, new_status)
        return call.to_resource()

    def list_calls(self, account_sid: str, query: Mapping[str, str]) -> dict[str, Any]:
        list_uri = f"{API_PREFIX}/{account_sid}/Calls.json"
        return list_calls_page(list(self.calls.values()), query, list_uri)

    def stats(self) -> dict[str, Any]:
        callbacks = self.callback_stats
        return {
            "live_calls": self.live_calls,
            "max_live_calls": self.max_live_calls,
            "calls_created": len(self.calls),
            "creates_by_number": dict(self.creates_by_number),
            "rate_limited": self.rate_limited,
            "invalid_rejected": self.invalid_rejected,
            "calls_by_status": dict(Counter(c.status for c in self.calls.values())),
            "callbacks": {
                "delivered": callbacks.delivered,
                "retried": callbacks.retried,
                "failed": callbacks.failed,
                "duplicated": callbacks.duplicated,
                "reordered": callbacks.reordered,
                "dropped": callbacks.dropped,
                "by_status": dict(callbacks.by_status),
            },
        }

    def call_summaries(self) -> Sequence[dict[str, Any]]:
        return [call.summary() for call in self.calls.values()]

    def _new_call(self, request: CreateRequest, expected: ExpectedCall) -> SimCall:
        call = SimCall(
            index=len(self.calls),
            sid=new_call_sid(),
            account_sid=self.config.account_sid,
            to=request.to,
            from_=request.from_,
            url=request.url,
            status_callback=request.status_callback,
            status_callback_method=request.status_callback_method,
            callback_events=request.callback_events,
            machine_detection=request.machine_detection,
            send_digits=request.send_digits,
            timeout=request.timeout,
            time_limit=request.time_limit,
            expected=expected,
            date_created=utc_now(),
            time_scale=self.scenario.time_scale,
            queue_seconds=self._queue_seconds(),
        )
        self.calls[call.sid] = call
        self.live_calls += 1
        self.max_live_calls = max(self.max_live_calls, self.live_calls)
        return call

    def _end_early(self, call: SimCall, new_status: str) -> None:
        if call.status == IN_PROGRESS:
            if new_status == COMPLETED:
                self.player.stop(call)
                self.player.finish(call, COMPLETED)
            return
        self.player.stop(call)
        self.player.finish(call, CANCELED)

    def _on_final(self, call: SimCall) -> None:
        self.live_calls -= 1
        logger.debug("call %s ended with status %s", call.sid, call.status)

    def _get(self, sid: str) -> SimCall:
        call = self.calls.get(sid)
        if call is None:
            raise SimulatorError(
                status.HTTP_404_NOT_FOUND,
                NOT_FOUND_ERROR,
                f"The requested resource {API_PREFIX}/{self.config.account_sid}"
                f"/Calls/{sid}.json was not found",
            )
        return call

    def _queue_seconds(self) -> float:
        """Reserve the next dial slot under max_calls_per_second, in FIFO order."""
        rate = self._faults.max_calls_per_second
        if rate is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next_dispatch)
        self._next_dispatch = slot + 1.0 / rate
        return slot - now

    def _take_rate_limit(self) -> bool:
        if self._rate_limit_remaining > 0:
            self._rate_limit_remaining -= 1
            return True
        return self._chance(self._faults.rate_limit_429_probability)

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self._rng.random() < probability
