"""Decide whether a contact may be dialled now and, if not, until when.

A moment is allowed when, in every candidate zone, the local time is inside
the campaign's window and inside the hours of every state rule that applies,
and the 24-hour call limits have room. Whether a moment is allowed can only
change at a few instants: a wall-clock boundary (window or state hours,
midnight) in some zone, a daylight-saving transition in some zone, or 24
hours after a counted call. The search evaluates exactly those instants in
order, so the first allowed one is the earliest allowed moment. It is exact
to the microsecond and bounded by HORIZON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from rules.places import UNKNOWN_ZONE_PROBLEM, ContactPlace
from rules.states import STATE_RULES, StateRule, state_holiday
from rules.window import WEEKDAY_NAMES, CallingWindow, validate_window

# Past this, a contact whose rules never line up is given up as "never"
# rather than woken again and again.
HORIZON = timedelta(days=14)
LIMIT_PERIOD = timedelta(hours=24)
# Offsets are sampled at this step to find daylight-saving transitions. In the
# tz database no zone changes offset twice within a week from 2020 to 2040, so
# hourly samples miss none.
_TRANSITION_STEP_SECONDS = 3600
_MIDNIGHT = time(0)

VerdictKind = Literal["dial", "wait", "never"]


@dataclass(frozen=True)
class TimeVerdict:
    """Result of the time check for one contact.

    Attributes:
        kind: "dial" now, "wait" until a moment, or "never".
        until: For "wait", the earliest moment (aware, UTC) at which every
            rule holds in every candidate zone. None otherwise.
        reason: Why not now, in words with zone and state names only.
    """

    kind: VerdictKind
    until: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Block:
    """One rule that forbids dialling at a given moment."""

    text: str
    zone: str | None = None


@dataclass(frozen=True)
class _Constraints:
    zones: tuple[ZoneInfo, ...]
    window: CallingWindow
    states: tuple[StateRule, ...]
    calls: tuple[datetime, ...]


def decide_time(
    now: datetime,
    place: ContactPlace,
    window: CallingWindow,
    recent_calls: Sequence[datetime],
) -> TimeVerdict:
    """Decide whether to dial at ``now``, wait until a moment, or never dial.

    Args:
        now: The current time, timezone-aware.
        place: The contact's candidate zones and states, from ``locate``.
        window: The campaign's calling window.
        recent_calls: When calls were placed to this number in the last 24
            hours, from every campaign. Timezone-aware.

    Raises:
        WindowError: the window is malformed or wider than the federal limit.
        ValueError: ``now`` or a call time is naive.
    """
    _require_aware(now, "now")
    validate_window(window)
    if place.problem is not None:
        return TimeVerdict("never", reason=place.problem)
    if not place.zones:
        return TimeVerdict("never", reason=UNKNOWN_ZONE_PROBLEM)
    constraints = _constraints(place, window, recent_calls)
    now = now.astimezone(UTC)
    block = next(_blocks(now, constraints), None)
    if block is None:
        return TimeVerdict("dial")
    until = _earliest_allowed(now, constraints)
    if until is None:
        return TimeVerdict("never", reason=_no_moment_reason(place))
    reason = _wait_reason(block, now, until, constraints)
    return TimeVerdict("wait", until=until, reason=reason)


def _constraints(
    place: ContactPlace, window: CallingWindow, recent_calls: Sequence[datetime]
) -> _Constraints:
    for call in recent_calls:
        _require_aware(call, "recent call time")
    return _Constraints(
        zones=tuple(ZoneInfo(name) for name in place.zones),
        window=window,
        states=tuple(STATE_RULES[code] for code in place.states if code in STATE_RULES),
        calls=tuple(sorted(call.astimezone(UTC) for call in recent_calls)),
    )


def _blocks(instant: datetime, constraints: _Constraints) -> Iterator[_Block]:
    """Yield every rule that forbids dialling at ``instant``."""
    for zone in constraints.zones:
        yield from _zone_blocks(instant.astimezone(zone), zone.key, constraints)
    for rule in constraints.states:
        if rule.hours_zone is not None:
            local = instant.astimezone(ZoneInfo(rule.hours_zone))
            yield from _state_hours_blocks(local, rule.hours_zone, rule)
    yield from _limit_blocks(instant, constraints)


def _zone_blocks(
    local: datetime, zone: str, constraints: _Constraints
) -> Iterator[_Block]:
    window = constraints.window
    weekday = local.isoweekday()
    if weekday not in window.days:
        yield _Block(f"{WEEKDAY_NAMES[weekday]} is not a calling day", zone)
    elif not window.start <= local.time() < window.end:
        yield _Block("outside calling hours", zone)
    for rule in constraints.states:
        yield from _state_day_blocks(local, zone, rule)
        yield from _state_hours_blocks(local, zone, rule)


def _state_day_blocks(local: datetime, zone: str, rule: StateRule) -> Iterator[_Block]:
    if rule.no_sundays and local.isoweekday() == 7:
        yield _Block(f"no calls on Sunday under {rule.name} rules", zone)
    if rule.no_state_holidays:
        holiday = state_holiday(rule.code, local.date())
        if holiday is not None:
            yield _Block(f"{rule.name} state holiday ({holiday})", zone)


def _state_hours_blocks(
    local: datetime, zone: str, rule: StateRule
) -> Iterator[_Block]:
    start, end = rule.hours_on(local.isoweekday())
    if not start <= local.time() < end:
        hours = f"{_clock(start)}-{_clock(end)}"
        yield _Block(f"outside {rule.name} calling hours ({hours})", zone)


def _limit_blocks(instant: datetime, constraints: _Constraints) -> Iterator[_Block]:
    limits = [
        (rule.max_calls_per_24h, rule.name)
        for rule in constraints.states
        if rule.max_calls_per_24h is not None
    ]
    if not limits:
        return
    maximum = min(limit for limit, _ in limits)
    names = " and ".join(name for limit, name in limits if limit == maximum)
    # A call counts until exactly 24 hours after it was placed. Calls stamped
    # after ``instant`` (clock skew between workers) count too.
    counted = sum(1 for call in constraints.calls if call > instant - LIMIT_PERIOD)
    if counted >= maximum:
        yield _Block(
            f"daily limit reached: {maximum} calls in 24 hours under {names} rules"
        )


def _earliest_allowed(now: datetime, constraints: _Constraints) -> datetime | None:
    for instant in _candidate_instants(now, now + HORIZON, constraints):
        if next(_blocks(instant, constraints), None) is None:
            return instant
    return None


def _candidate_instants(
    start: datetime, end: datetime, constraints: _Constraints
) -> list[datetime]:
    """Return, sorted, every instant in (start, end] where a rule may change."""
    instants: set[datetime] = set()
    boundaries = _boundary_times(constraints)
    for zone in _clock_zones(constraints):
        instants.update(_wall_boundaries(zone, start, end, boundaries))
        instants.update(_transitions(zone, start, end))
    instants.update(call + LIMIT_PERIOD for call in constraints.calls)
    return sorted(instant for instant in instants if start < instant <= end)


def _clock_zones(constraints: _Constraints) -> list[ZoneInfo]:
    zones = list(constraints.zones)
    for rule in constraints.states:
        if rule.hours_zone is not None:
            zones.append(ZoneInfo(rule.hours_zone))
    return zones


def _boundary_times(constraints: _Constraints) -> frozenset[time]:
    # Midnight is where the weekday, Sundays and holidays change.
    times = {_MIDNIGHT, constraints.window.start, constraints.window.end}
    for rule in constraints.states:
        for weekday in (1, 7):
            times.update(rule.hours_on(weekday))
    return frozenset(times)


def _wall_boundaries(
    zone: ZoneInfo, start: datetime, end: datetime, boundaries: frozenset[time]
) -> Iterator[datetime]:
    """Yield the instants at which the local clock in ``zone`` shows a boundary.

    An ambiguous wall time (the repeated hour after a fall-back) gives two
    instants, one per fold. A wall time that does not exist (the skipped hour
    of a spring-forward) gives two instants that are not boundaries. Those
    are harmless candidates, and the transition itself is a candidate too.
    """
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for boundary in boundaries:
            for fold in (0, 1):
                yield _wall_instant(day, boundary, zone, fold)
        day += timedelta(days=1)


def _wall_instant(day: date, clock: time, zone: ZoneInfo, fold: int) -> datetime:
    local = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold)
    return local.astimezone(UTC)


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Return the instants in [start, end] at which ``zone`` changes offset."""
    found = []
    low = int(start.timestamp())
    stop = int(end.timestamp()) + 1
    while low < stop:
        high = min(low + _TRANSITION_STEP_SECONDS, stop)
        if _offset(zone, low) != _offset(zone, high):
            found.append(_first_second_with_new_offset(zone, low, high))
        low = high
    return found


def _first_second_with_new_offset(zone: ZoneInfo, low: int, high: int) -> datetime:
    # Offsets change on whole seconds, so bisecting integer timestamps finds
    # the transition exactly.
    before = _offset(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _offset(zone: ZoneInfo, timestamp: int) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()


def _wait_reason(
    block: _Block, now: datetime, until: datetime, constraints: _Constraints
) -> str:
    """Describe the rule that forbids ``now`` and when dialling may resume.

    "X until T" is used only when X still applies right before T. Otherwise
    another rule takes over first, and T is given as when calls are allowed
    again.
    """
    moment = _describe_moment(until, now, block.zone)
    where = f" in {block.zone}" if block.zone is not None else ""
    last_blocks = set(_blocks(until - timedelta(microseconds=1), constraints))
    if block in last_blocks:
        return f"{block.text}{where} until {moment}"
    return f"{block.text}{where} (calls allowed again {moment})"


def _describe_moment(until: datetime, now: datetime, zone_name: str | None) -> str:
    if zone_name is None:
        return f"{until.date().isoformat()} {_clock(until.time())} UTC"
    zone = ZoneInfo(zone_name)
    local = until.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{_clock(local.time())} local"
    weekday = WEEKDAY_NAMES[local.isoweekday()]
    return f"{weekday} {local.date().isoformat()} {_clock(local.time())} local"


def _no_moment_reason(place: ContactPlace) -> str:
    ruled = [STATE_RULES[code].name for code in place.states if code in STATE_RULES]
    rules = f" and the rules of {', '.join(ruled)}" if ruled else ""
    if len(place.zones) == 1:
        subject = f"time zone {place.zones[0]} has"
    else:
        subject = f"time zones {', '.join(place.zones)} share"
    return (
        f"{subject} no allowed moment in the next {HORIZON.days} days under this "
        f"calling window{rules}: widen the window's days or hours, or correct "
        "the contact's time zone"
    )


def _clock(value: time) -> str:
    if value.second or value.microsecond:
        return value.strftime("%H:%M:%S")
    return value.strftime("%H:%M")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} is naive: pass an aware datetime")
