"""Scenarios that decide how each simulated call ends.

A scenario gives each number either a fixed sequence of outcomes (the nth call
to the number takes the nth entry and the last entry repeats) or draws the
outcome from seeded rates. The draw depends only on the seed, the number and
the call's index for that number, never on the global order of calls, so a
run with many concurrent calls is reproducible.

Times are in the seconds a real call would take. The simulator multiplies them
by ``time_scale`` before it sleeps, so 0.001 plays a 90-second call in 90 ms.

When the simulator also plays the agent, ``agent_results`` gives, per number,
what the agent reports for an answered call (transcript, summary, labels).
Other numbers get ``agent_result``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HUMAN = "human"
MACHINE = "machine"
NO_ANSWER = "no-answer"
BUSY = "busy"
FAILED = "failed"
INVALID = "invalid"

MACHINE_START = "machine_start"
MACHINE_END_BEEP = "machine_end_beep"
MACHINE_END_SILENCE = "machine_end_silence"
MACHINE_END_OTHER = "machine_end_other"
FAX = "fax"
UNKNOWN = "unknown"

# Every outcome in which the call is picked up, mapped to the AnsweredBy value
# that answering-machine detection reports for it.
ANSWERED_BY = {
    HUMAN: HUMAN,
    MACHINE: MACHINE_END_BEEP,
    MACHINE_START: MACHINE_START,
    MACHINE_END_BEEP: MACHINE_END_BEEP,
    MACHINE_END_SILENCE: MACHINE_END_SILENCE,
    MACHINE_END_OTHER: MACHINE_END_OTHER,
    FAX: FAX,
    UNKNOWN: UNKNOWN,
}
OUTCOMES = frozenset({*ANSWERED_BY, NO_ANSWER, BUSY, FAILED, INVALID})

# Values of Twilio's MachineDetection create parameter.
DETECT_ENABLE = "Enable"
DETECT_MESSAGE_END = "DetectMessageEnd"

INVALID_NUMBER_ERROR = 21211
# Twilio's default Timeout for calls created over the REST API, and its maximum.
DEFAULT_RING_TIMEOUT = 60
MAX_RING_TIMEOUT = 600

DEFAULT_RING_SECONDS: Mapping[str, float] = {
    HUMAN: 8.0,
    MACHINE: 5.0,
    BUSY: 2.0,
    FAILED: 1.0,
}
DEFAULT_TALK_SECONDS: Mapping[str, float] = {HUMAN: 90.0, MACHINE: 30.0}

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_KNOWN_KEYS = frozenset(
    {
        "numbers",
        "rates",
        "seed",
        "invalid_numbers",
        "invalid_patterns",
        "ring_seconds",
        "talk_seconds",
        "time_scale",
        "agent_results",
        "agent_result",
    }
)
_AGENT_RESULT_KEYS = frozenset({"labels", "summary", "transcript", "report"})


@dataclass(frozen=True)
class AgentResult:
    """What the simulated agent reports once an answered call ends."""

    labels: tuple[str, ...] = ()
    summary: str = "The contact listened to the agent and the call ended normally."
    # None builds a transcript from the context that the agent fetched.
    transcript: str | None = None
    # False makes the agent send no report, as when it crashes mid-call.
    report: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentResult:
        unknown = set(data) - _AGENT_RESULT_KEYS
        if unknown:
            raise ValueError(
                f"scenario: unknown agent result keys {sorted(unknown)}, "
                f"expected some of {sorted(_AGENT_RESULT_KEYS)}"
            )
        defaults = cls()
        return cls(
            labels=tuple(data.get("labels", ())),
            summary=str(data.get("summary", defaults.summary)),
            transcript=data.get("transcript"),
            report=bool(data.get("report", True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "summary": self.summary,
            "transcript": self.transcript,
            "report": self.report,
        }


@dataclass(frozen=True)
class ExpectedCall:
    """The result a client of the provider receives for one call.

    ``status`` is the final call status, or None when the create request is
    rejected with ``error_code``. Times are unscaled seconds.
    """

    outcome: str
    status: str | None
    answered_by: str | None
    error_code: int | None
    ring_seconds: float
    talk_seconds: float


@dataclass(frozen=True)
class Scenario:
    """Outcome rules for the simulator, described in the module docstring."""

    numbers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=lambda: {HUMAN: 1.0})
    seed: int = 0
    invalid_numbers: frozenset[str] = frozenset()
    # Regular expressions. A number that fully matches one is invalid.
    invalid_patterns: tuple[str, ...] = ()
    # Overrides per outcome (such as "machine_end_silence") or per kind
    # ("human", "machine", "busy", "failed") of the defaults above.
    ring_seconds: Mapping[str, float] = field(default_factory=dict)
    talk_seconds: Mapping[str, float] = field(default_factory=dict)
    time_scale: float = 1.0
    agent_results: Mapping[str, AgentResult] = field(default_factory=dict)
    agent_result: AgentResult = field(default_factory=AgentResult)

    def __post_init__(self) -> None:
        for number, sequence in self.numbers.items():
            if not sequence:
                raise ValueError(f"scenario: the sequence for {number} is empty")
            _check_outcomes(sequence, f"the sequence for {number}")
        _check_outcomes(self.rates, "rates")
        if any(rate < 0 for rate in self.rates.values()):
            raise ValueError("scenario: rates must not be negative")
        if sum(self.rates.values()) <= 0:
            raise ValueError("scenario: at least one rate must be positive")
        if self.time_scale < 0:
            raise ValueError(f"scenario: time_scale {self.time_scale} is negative")
        for pattern in self.invalid_patterns:
            re.compile(pattern)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build a scenario from its JSON form; raise ValueError on unknown keys."""
        unknown = set(data) - _KNOWN_KEYS
        if unknown:
            raise ValueError(f"scenario: unknown keys {sorted(unknown)}")
        numbers = _mapping(data, "numbers")
        return cls(
            numbers={number: tuple(sequence) for number, sequence in numbers.items()},
            rates=dict(_mapping(data, "rates", {HUMAN: 1.0})),
            seed=int(data.get("seed", 0)),
            invalid_numbers=frozenset(data.get("invalid_numbers", ())),
            invalid_patterns=tuple(data.get("invalid_patterns", ())),
            ring_seconds=dict(_mapping(data, "ring_seconds")),
            talk_seconds=dict(_mapping(data, "talk_seconds")),
            time_scale=float(data.get("time_scale", 1.0)),
            agent_results={
                number: AgentResult.from_dict(result)
                for number, result in _mapping(data, "agent_results").items()
            },
            agent_result=AgentResult.from_dict(_mapping(data, "agent_result")),
        )

    @classmethod
    def from_file(cls, path: Path | str) -> Scenario:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "numbers": {number: list(seq) for number, seq in self.numbers.items()},
            "rates": dict(self.rates),
            "seed": self.seed,
            "invalid_numbers": sorted(self.invalid_numbers),
            "invalid_patterns": list(self.invalid_patterns),
            "ring_seconds": dict(self.ring_seconds),
            "talk_seconds": dict(self.talk_seconds),
            "time_scale": self.time_scale,
            "agent_results": {
                number: result.to_dict()
                for number, result in self.agent_results.items()
            },
            "agent_result": self.agent_result.to_dict(),
        }

    def is_invalid(self, number: str) -> bool:
        """Return whether a create to ``number`` fails with error 21211."""
        if number in self.invalid_numbers or not _E164.fullmatch(number):
            return True
        return any(re.fullmatch(rule, number) for rule in self.invalid_patterns)

    def outcome_for(self, number: str, call_index: int) -> str:
        """Return the outcome of the call with 0-based ``call_index`` to ``number``."""
        if self.is_invalid(number):
            return INVALID
        sequence = self.numbers.get(number)
        if sequence is not None:
            return sequence[min(call_index, len(sequence) - 1)]
        return self._draw(number, call_index)

    def scaled(self, seconds: float) -> float:
        """Convert scenario seconds to the wall-clock seconds the simulator waits."""
        return seconds * self.time_scale

    def _draw(self, number: str, call_index: int) -> str:
        # A string seed is hashed with SHA-512 by random.Random, so the draw is
        # the same in every process, unlike hash().
        draw = random.Random(f"{self.seed}:{number}:{call_index}").random()
        total = sum(self.rates.values())
        threshold = 0.0
        ordered = sorted(self.rates.items())
        for outcome, rate in ordered:
            threshold += rate / total
            if draw < threshold:
                return outcome
        # Rounding can leave the draw just above the last threshold.
        return ordered[-1][0]

    def agent_result_for(self, number: str) -> AgentResult:
        """Return what the agent reports for an answered call to ``number``."""
        return self.agent_results.get(number, self.agent_result)

    def ring_seconds_for(self, outcome: str) -> float:
        return _lookup(self.ring_seconds, DEFAULT_RING_SECONDS, outcome)

    def talk_seconds_for(self, outcome: str) -> float:
        return _lookup(self.talk_seconds, DEFAULT_TALK_SECONDS, outcome)


def expected_call(
    scenario: Scenario,
    number: str,
    call_index: int,
    *,
    machine_detection: str | None = DETECT_ENABLE,
    ring_timeout: int = DEFAULT_RING_TIMEOUT,
    send_digits: bool = False,
) -> ExpectedCall:
    """Compute what the provider reports for the nth call (0-based) to a number.

    The simulator plays every call from this result, so tests can compare the
    engine's records with it. A call that would be picked up but rings for
    ``ring_timeout`` or longer ends as no-answer, as a real call would.
    """
    outcome = scenario.outcome_for(number, call_index)
    if outcome == INVALID:
        return ExpectedCall(outcome, None, None, INVALID_NUMBER_ERROR, 0.0, 0.0)
    timeout = float(min(ring_timeout, MAX_RING_TIMEOUT))
    if outcome == NO_ANSWER:
        return ExpectedCall(outcome, NO_ANSWER, None, None, timeout, 0.0)
    ring = scenario.ring_seconds_for(outcome)
    if outcome in (BUSY, FAILED):
        return ExpectedCall(outcome, outcome, None, None, ring, 0.0)
    if ring >= timeout:
        return ExpectedCall(outcome, NO_ANSWER, None, None, timeout, 0.0)
    answered_by = reported_answered_by(
        outcome, machine_detection=machine_detection, send_digits=send_digits
    )
    talk = scenario.talk_seconds_for(outcome)
    return ExpectedCall(outcome, "completed", answered_by, None, ring, talk)


def reported_answered_by(
    outcome: str, *, machine_detection: str | None, send_digits: bool
) -> str | None:
    """Return the AnsweredBy value Twilio reports for an answered call.

    Without machine detection there is none. Twilio's AMD documentation says
    that MachineDetection is ignored when SendDigits is also given. With
    ``Enable`` Twilio stops at the greeting's start, so every machine_end_*
    value becomes ``machine_start``. With ``DetectMessageEnd`` the scenario's
    value is reported as it is.
    """
    if machine_detection is None or send_digits:
        return None
    answered_by = ANSWERED_BY[outcome]
    if machine_detection == DETECT_ENABLE and answered_by.startswith("machine_end"):
        return MACHINE_START
    return answered_by


def _lookup(
    table: Mapping[str, float], defaults: Mapping[str, float], outcome: str
) -> float:
    # Machine-like answers share the "machine" entry unless named on their own.
    kind = MACHINE if outcome in ANSWERED_BY and outcome != HUMAN else outcome
    for key in (outcome, kind):
        if key in table:
            return float(table[key])
    return float(defaults.get(kind, 0.0))


def _mapping(
    data: Mapping[str, Any], key: str, default: Mapping[str, Any] | None = None
) -> Mapping[str, Any]:
    value = data.get(key, {} if default is None else default)
    if not isinstance(value, Mapping):
        raise TypeError(f"scenario: {key} must be a JSON object")
    return value


def _check_outcomes(names: Any, where: str) -> None:
    unknown = sorted(set(names) - OUTCOMES)
    if unknown:
        raise ValueError(
            f"scenario: unknown outcomes {unknown} in {where}; "
            f"expected some of {sorted(OUTCOMES)}"
        )
