"""Settings and fault injection for the Twilio-compatible simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from telephony.scenario import Scenario

# Shaped like real credentials (AC + 32 hex digits) so that code checking the
# format accepts them. They open nothing but the simulator.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "simulator-auth-token"

_PROBABILITIES = (
    "drop_create_response",
    "duplicate_callbacks",
    "reorder_callbacks",
    "drop_final_callback",
    "rate_limit_429_probability",
)


@dataclass(frozen=True)
class Faults:
    """Faults the simulator injects. Probabilities are between 0 and 1."""

    # The call is created and starts playing, but the HTTP response is held
    # this long, as when a response is lost to a client timeout.
    create_delay_seconds: float = 0.0
    # Probability that the create response is held until the client
    # disconnects (or SimulatorConfig.dropped_response_hold_seconds passes).
    drop_create_response: float = 0.0
    # Probability that a callback is sent twice.
    duplicate_callbacks: float = 0.0
    # Probability that a callback other than the final one is held back and
    # sent after the next one.
    reorder_callbacks: float = 0.0
    # Probability that the final callback is never sent; fetch still returns
    # the final status.
    drop_final_callback: float = 0.0
    # Creates rejected with HTTP 429 and Twilio error 20429, creating nothing:
    # each create with this probability, plus the next rate_limit_429_count.
    rate_limit_429_probability: float = 0.0
    rate_limit_429_count: int = 0
    # Like Twilio's calls-per-second limit: creates above the rate stay
    # queued until their turn. None means no limit.
    max_calls_per_second: float | None = None

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"faults: {name}={value} is not between 0 and 1")
        if self.create_delay_seconds < 0:
            raise ValueError("faults: create_delay_seconds must not be negative")
        if self.rate_limit_429_count < 0:
            raise ValueError("faults: rate_limit_429_count must not be negative")
        if self.max_calls_per_second is not None and self.max_calls_per_second <= 0:
            raise ValueError("faults: max_calls_per_second must be positive or null")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build faults from their JSON form; raise ValueError on unknown keys."""
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"faults: unknown keys {sorted(unknown)}; expected some of "
                f"{sorted(known)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AgentRole:
    """The engine the simulator reaches when it plays the voice agent.

    With a role set, an answered call's Url is requested as Twilio requests
    it, and the TwiML it returns is followed. A <Redirect> to the
    simulator's own /agent/voice reaches the stand-in agent. The stand-in
    fetches the call's context from ``engine_url`` with ``token`` and reports
    once the call ends. Without a token it answers the call but reports
    nothing. NOTE: with one token the simulator plays one agent, so calls of
    other agents get their context and reports rejected.
    """

    engine_url: str
    token: str | None = None
    # Tries per request to the engine when it is unreachable or returns 5xx.
    request_attempts: int = 3

    def __post_init__(self) -> None:
        if not self.engine_url.startswith(("http://", "https://")):
            raise ValueError(f"agent: engine_url {self.engine_url!r} is not a URL")
        if self.request_attempts < 1:
            raise ValueError("agent: request_attempts must be at least 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentRole:
        """Build a role from its JSON form, or raise ValueError on unknown keys."""
        known = {item.name for item in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"agent: unknown keys {sorted(unknown)}, expected some of "
                f"{sorted(known)}"
            )
        if "engine_url" not in data:
            raise ValueError("agent: engine_url is missing")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        # The token stays out, so the control API never shows it.
        return {
            "engine_url": self.engine_url,
            "has_token": self.token is not None,
            "request_attempts": self.request_attempts,
        }


@dataclass(frozen=True)
class SimulatorConfig:
    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    scenario: Scenario = field(default_factory=Scenario)
    faults: Faults = field(default_factory=Faults)
    # Seeds the draws for probabilistic faults. Those draws follow the order
    # of requests, so concurrent runs may differ. Call outcomes do not.
    fault_seed: int = 0
    # Deliveries per callback when the receiver is down or responds with 5xx:
    # the first try plus retries, waiting callback_retry_seconds, then double.
    callback_attempts: int = 4
    callback_retry_seconds: float = 0.1
    callback_timeout_seconds: float = 15.0
    max_callback_connections: int = 20
    dropped_response_hold_seconds: float = 60.0
    # None: answered calls never request their Url and no agent is played.
    agent: AgentRole | None = None
