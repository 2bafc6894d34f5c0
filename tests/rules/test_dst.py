"""Waits across daylight-saving changes land on the local window opening."""

import struct
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rules.decide import decide_time
from rules.places import ContactPlace, locate
from rules.window import CallingWindow

NEW_YORK = ZoneInfo("America/New_York")
MANHATTAN = "+12125551234"
EVERY_DAY = CallingWindow(days=(1, 2, 3, 4, 5, 6, 7))


def new_york_place() -> ContactPlace:
    return locate(MANHATTAN, None, None)


def test_spring_forward_wait_ends_at_nine_daylight_time():
    midnight_est = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)

    verdict = decide_time(midnight_est, new_york_place(), EVERY_DAY, [])

    assert verdict.until == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_spring_forward_wait_uses_new_offset():
    midnight_est = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)

    verdict = decide_time(midnight_est, new_york_place(), EVERY_DAY, [])
    local = verdict.until.astimezone(NEW_YORK)

    assert local.time() == time(9, 0)
    assert local.utcoffset() == timedelta(hours=-4)


def test_spring_forward_retry_due_in_skipped_hour():
    # 07:30 UTC is 03:30 EDT: the clocks have just skipped 02:00-03:00.
    just_after_change = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)

    verdict = decide_time(just_after_change, new_york_place(), EVERY_DAY, [])

    assert verdict.until == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_spring_forward_saturday_evening_waits_for_monday():
    saturday_nine_pm_est = datetime(2026, 3, 8, 2, 0, tzinfo=UTC)

    verdict = decide_time(saturday_nine_pm_est, new_york_place(), CallingWindow(), [])

    assert verdict.until == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_fall_back_first_pass_of_repeated_hour():
    one_thirty_edt = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)

    verdict = decide_time(one_thirty_edt, new_york_place(), EVERY_DAY, [])

    assert verdict.until == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_fall_back_second_pass_of_repeated_hour():
    one_thirty_est = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)

    verdict = decide_time(one_thirty_est, new_york_place(), EVERY_DAY, [])

    assert verdict.until == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_fall_back_wait_uses_new_offset():
    one_thirty_edt = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)

    verdict = decide_time(one_thirty_edt, new_york_place(), EVERY_DAY, [])
    local = verdict.until.astimezone(NEW_YORK)

    assert local.time() == time(9, 0)
    assert local.utcoffset() == timedelta(hours=-5)


def test_fall_back_saturday_evening_waits_for_monday():
    saturday_nine_pm_edt = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)

    verdict = decide_time(saturday_nine_pm_edt, new_york_place(), CallingWindow(), [])

    assert verdict.until == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def test_fall_back_wait_fires_once():
    one_thirty_edt = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    first = decide_time(one_thirty_edt, new_york_place(), EVERY_DAY, [])

    retry_in_repeated_hour = datetime(2026, 11, 1, 6, 45, tzinfo=UTC)
    second = decide_time(retry_in_repeated_hour, new_york_place(), EVERY_DAY, [])
    at_opening = decide_time(first.until, new_york_place(), EVERY_DAY, [])

    assert second.until == first.until
    assert at_opening.kind == "dial"


def test_wait_reason_names_local_opening():
    midnight_est = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)

    verdict = decide_time(midnight_est, new_york_place(), EVERY_DAY, [])

    assert (
        verdict.reason == "outside calling hours in America/New_York until 09:00 local"
    )


def test_midnight_transition_sunday_window():
    # Beirut moves its clocks from 00:00 to 01:00 on the last Sunday of March,
    # so that Sunday has no midnight.
    beirut = ZoneInfo("Asia/Beirut")
    place = ContactPlace(zones=("Asia/Beirut",), states=())
    sunday_only = CallingWindow(days=(7,))
    saturday_evening = datetime(2026, 3, 28, 21, 0, tzinfo=beirut)

    verdict = decide_time(saturday_evening, place, sunday_only, [])

    assert verdict.until == datetime(2026, 3, 29, 9, 0, tzinfo=beirut)


def test_half_hour_dst_zone_opening():
    # Lord Howe Island shifts by 30 minutes, on 2026-04-05 at 02:00 local.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    place = ContactPlace(zones=("Australia/Lord_Howe",), states=())
    before_change = datetime(2026, 4, 5, 1, 0, tzinfo=lord_howe)

    verdict = decide_time(before_change, place, EVERY_DAY, [])
    local = verdict.until.astimezone(lord_howe)

    assert local.replace(tzinfo=None) == datetime(2026, 4, 5, 9, 0)
    assert local.utcoffset() == timedelta(hours=10, minutes=30)


# From 2020 to 2035 no zone in the tz database moves its clocks inside
# 08:00-21:00 local, so these tests build one that does. It is UTC+1, and its
# clocks go from 09:00 to 10:00 on the second Sunday of March and from 10:00
# back to 09:00 on the first Sunday of November (a POSIX TZ rule in a TZif
# file).
MORNING_SHIFT_RULE = "AAA-1BBB,M3.2.0/9,M11.1.0/10"
HALF_PAST_NINE = CallingWindow(start=time(9, 30), end=time(20), days=EVERY_DAY.days)


def tzif_with_rule(rule: str) -> bytes:
    """Return a TZif version 2 file with no transitions, only a footer rule."""
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, 4)
    header = b"TZif2" + bytes(15) + counts
    types = struct.pack(">lBB", 3600, 0, 0) + b"AAA\x00"
    return header + types + header + types + b"\n" + rule.encode() + b"\n"


@pytest.fixture
def morning_shift_place(tmp_path: Path) -> Iterator[ContactPlace]:
    (tmp_path / "Test").mkdir()
    (tmp_path / "Test" / "MorningShift").write_bytes(tzif_with_rule(MORNING_SHIFT_RULE))
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    try:
        yield ContactPlace(zones=("Test/MorningShift",), states=())
    finally:
        ZoneInfo.clear_cache(only_keys=["Test/MorningShift"])
        zoneinfo.reset_tzpath()


def test_opening_inside_skipped_hour_waits_for_the_jump(morning_shift_place):
    # 09:30 does not exist on 2026-03-08: the clock jumps from 09:00 to 10:00
    # at 08:00 UTC, which is the first moment at or after 09:30 local.
    before_jump = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)

    verdict = decide_time(before_jump, morning_shift_place, HALF_PAST_NINE, [])

    assert verdict.until == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


def test_opening_in_first_pass_of_repeated_hour(morning_shift_place):
    first_nine_ten = datetime(2026, 11, 1, 7, 10, tzinfo=UTC)

    verdict = decide_time(first_nine_ten, morning_shift_place, HALF_PAST_NINE, [])

    assert verdict.until == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)


def test_opening_in_second_pass_of_repeated_hour(morning_shift_place):
    second_nine_ten = datetime(2026, 11, 1, 8, 10, tzinfo=UTC)

    verdict = decide_time(second_nine_ten, morning_shift_place, HALF_PAST_NINE, [])

    assert verdict.until == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
