"""A campaign's calling window and the federal limit it must stay inside.

Windows are local wall-clock times, applied in each contact's own time zone.
The start is inclusive and the end exclusive, so 09:00-20:00 allows 19:59:59
and rejects 20:00:00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

# 47 C.F.R. § 64.1200(c)(1): no telephone solicitation before 8 a.m. or after
# 9 p.m. local time at the called party's location. No setting may widen it.
FEDERAL_START = time(8, 0)
FEDERAL_END = time(21, 0)
FEDERAL_SOURCE = "47 C.F.R. § 64.1200(c)(1)"

DEFAULT_START = time(9, 0)
DEFAULT_END = time(20, 0)
# ISO weekday numbers: Monday = 1 ... Sunday = 7.
DEFAULT_DAYS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)

WEEKDAY_NAMES = {
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
    7: "Sunday",
}


class WindowError(ValueError):
    """A calling window that is malformed or wider than the law allows."""


@dataclass(frozen=True)
class CallingWindow:
    """Local hours and ISO weekdays in which a campaign may dial."""

    start: time = DEFAULT_START
    end: time = DEFAULT_END
    days: tuple[int, ...] = DEFAULT_DAYS

    @classmethod
    def parse(
        cls, start: str, end: str, days: Iterable[int] = DEFAULT_DAYS
    ) -> CallingWindow:
        """Build a window from "HH:MM" strings and validate it.

        Raises:
            WindowError: a time is not "HH:MM", or the window is invalid.
        """
        window = cls(
            start=_parse_time(start, "start"),
            end=_parse_time(end, "end"),
            days=tuple(sorted(days)),
        )
        validate_window(window)
        return window

    def allows(self, local: datetime) -> bool:
        """Return whether a local wall-clock moment falls inside the window."""
        if local.isoweekday() not in self.days:
            return False
        return self.start <= local.time() < self.end


def validate_window(window: CallingWindow) -> None:
    """Raise WindowError unless the window is well formed and lawful.

    The start must come before the end, both inside the federal 08:00-21:00,
    and the days must be distinct ISO weekday numbers from 1 to 7.
    """
    _check_naive(window.start, "start")
    _check_naive(window.end, "end")
    if window.start >= window.end:
        raise WindowError(
            f"calling window start {_hhmm(window.start)} must be before its end "
            f"{_hhmm(window.end)}"
        )
    if window.start < FEDERAL_START or window.end > FEDERAL_END:
        raise WindowError(
            f"calling window {_hhmm(window.start)}-{_hhmm(window.end)} is wider "
            f"than the federal limit of {_hhmm(FEDERAL_START)}-"
            f"{_hhmm(FEDERAL_END)} in the contact's local time "
            f"({FEDERAL_SOURCE}): choose hours inside it"
        )
    _check_days(window.days)


def _check_days(days: tuple[int, ...]) -> None:
    if not days:
        raise WindowError("calling window has no days: give ISO weekdays 1-7")
    invalid = [day for day in days if day not in WEEKDAY_NAMES]
    if invalid:
        raise WindowError(
            f"calling window days {invalid} are not ISO weekdays: use 1 (Monday) "
            "to 7 (Sunday)"
        )
    if len(set(days)) != len(days):
        raise WindowError(f"calling window days {list(days)} repeat a day")


def _check_naive(value: time, name: str) -> None:
    if value.tzinfo is not None:
        raise WindowError(
            f"calling window {name} {value} carries a time zone: give local "
            "wall-clock times, which apply in each contact's own zone"
        )


def _parse_time(text: str, name: str) -> time:
    text = text.strip()
    # ISO 8601 requires two hour digits, but people often write 7:00 for 07:00.
    if len(text) == 4 and text[1] == ":" and text[0].isdigit():
        text = "0" + text
    try:
        return time.fromisoformat(text)
    except ValueError as error:
        raise WindowError(
            f"calling window {name} {text!r} is not a time: use HH:MM, such as 09:00"
        ) from error


def _hhmm(value: time) -> str:
    if value.second or value.microsecond:
        return value.isoformat()
    return value.strftime("%H:%M")
