"""Valid phone numbers whose zone is inside the calling window, in bulk.

The contact importer rejects numbers that phonenumbers finds invalid, and the
check before a dial waits for a number whose zone is outside the window. A
benchmark that runs for up to an hour needs many numbers, all in zones where
08:00-21:00 holds for that whole hour, wherever on the clock it starts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from rules.places import locate

# Federal limits and every day, so that some zone of the pool is always open.
WIDE_WINDOW = {
    "window_start": "08:00",
    "window_end": "21:00",
    "window_days": [1, 2, 3, 4, 5, 6, 7],
}
OPEN_FROM_HOUR = 8
OPEN_UNTIL_HOUR = 21


@dataclass(frozen=True)
class NumberRange:
    """Consecutive numbers ``prefix`` + ``digits`` digits, from ``first`` on."""

    prefix: str
    digits: int
    first: int
    zone: str

    def number(self, offset: int) -> str:
        return f"{self.prefix}{self.first + offset:0{self.digits}d}"


# One range per zone, each in a single zone and in no US state with stricter
# calling rules, spread around the world so that several are open at any hour.
# Every call goes to the local simulator; none of these numbers is dialled.
RANGES: tuple[NumberRange, ...] = (
    NumberRange("+1202", 7, 2_000_000, "America/New_York"),
    NumberRange("+1312", 7, 2_000_000, "America/Chicago"),
    NumberRange("+1303", 7, 2_000_000, "America/Denver"),
    NumberRange("+1213", 7, 2_000_000, "America/Los_Angeles"),
    NumberRange("+1808", 7, 2_000_000, "Pacific/Honolulu"),
    NumberRange("+4420", 8, 70_000_000, "Europe/London"),
    NumberRange("+4930", 8, 90_100_000, "Europe/Berlin"),
    NumberRange("+813", 8, 12_000_000, "Asia/Tokyo"),
    NumberRange("+612", 8, 55_000_000, "Australia/Sydney"),
    # phonenumbers names India's zone by its older alias, Asia/Calcutta.
    NumberRange("+9198", 8, 10_000_000, "Asia/Calcutta"),
)


def open_ranges(now: datetime, open_for: timedelta) -> list[NumberRange]:
    """Return the ranges whose zone stays inside 08:00-21:00 from now on."""
    checks = [now, now + open_for / 2, now + open_for]
    found = []
    for number_range in RANGES:
        zone = ZoneInfo(number_range.zone)
        hours = [moment.astimezone(zone).hour for moment in checks]
        if all(OPEN_FROM_HOUR <= hour < OPEN_UNTIL_HOUR for hour in hours):
            found.append(number_range)
    return found


def open_numbers(
    count: int,
    *,
    open_for: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> list[str]:
    """Return ``count`` distinct valid numbers in zones open for ``open_for``.

    Raises:
        RuntimeError: no zone of the pool stays open that long.
    """
    now = now or datetime.now(UTC)
    ranges = open_ranges(now, open_for)
    if not ranges:
        raise RuntimeError(
            f"no zone of the number pool stays inside 08:00-21:00 for {open_for} "
            f"from {now:%H:%M} UTC; run with a shorter open_for"
        )
    streams = [_valid_numbers(number_range) for number_range in ranges]
    numbers: list[str] = []
    while len(numbers) < count:
        for stream in streams:
            numbers.append(next(stream))
            if len(numbers) == count:
                break
    return numbers


def _valid_numbers(number_range: NumberRange) -> Iterator[str]:
    offset = 0
    while True:
        number = number_range.number(offset)
        offset += 1
        if _in_zone(number, number_range.zone):
            yield number


def _in_zone(number: str, zone: str) -> bool:
    parsed = phonenumbers.parse(number, None)
    if not phonenumbers.is_valid_number(parsed):
        return False
    place = locate(number, None, None)
    return place.problem is None and place.zones == (zone,)


def contacts_csv(numbers: list[str]) -> bytes:
    """Write the numbers as a contact CSV file with a name column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone", "name"])
    for index, number in enumerate(numbers):
        writer.writerow([number, f"Contact {index}"])
    return buffer.getvalue().encode()
