from datetime import UTC, datetime, time

import pytest

from rules.window import (
    DEFAULT_DAYS,
    CallingWindow,
    WindowError,
    validate_window,
)


def test_window_default_hours_and_days():
    window = CallingWindow()

    assert window.start == time(9, 0)
    assert window.end == time(20, 0)
    assert window.days == (1, 2, 3, 4, 5, 6)


def test_validate_window_accepts_federal_limits_exactly():
    window = CallingWindow(
        start=time(8, 0), end=time(21, 0), days=(1, 2, 3, 4, 5, 6, 7)
    )

    validate_window(window)


def test_validate_window_rejects_wider_than_federal():
    window = CallingWindow(start=time(7, 0), end=time(22, 0))

    with pytest.raises(WindowError) as caught:
        validate_window(window)

    assert "federal limit of 08:00-21:00" in str(caught.value)
    assert "47 C.F.R. § 64.1200(c)(1)" in str(caught.value)
    assert "07:00-22:00" in str(caught.value)


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(7, 59), time(20, 0)), (time(9, 0), time(21, 1)), (time(0, 0), time(8, 30))],
)
def test_validate_window_rejects_either_edge_outside_federal(start, end):
    with pytest.raises(WindowError, match="federal limit"):
        validate_window(CallingWindow(start=start, end=end))


@pytest.mark.parametrize(
    ("start", "end"), [(time(12, 0), time(12, 0)), (time(18, 0), time(9, 0))]
)
def test_validate_window_rejects_start_not_before_end(start, end):
    with pytest.raises(WindowError, match="must be before its end"):
        validate_window(CallingWindow(start=start, end=end))


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ((), "no days"),
        ((0, 1), "not ISO weekdays"),
        ((1, 8), "not ISO weekdays"),
        ((1, 1, 2), "repeat a day"),
    ],
)
def test_validate_window_rejects_bad_days(days, message):
    with pytest.raises(WindowError, match=message):
        validate_window(CallingWindow(days=days))


def test_validate_window_rejects_time_with_zone():
    window = CallingWindow(start=time(9, 0, tzinfo=UTC))

    with pytest.raises(WindowError, match="local wall-clock"):
        validate_window(window)


def test_window_parse_reads_hours_and_sorts_days():
    window = CallingWindow.parse("08:30", "19:45", [5, 1, 3])

    assert window == CallingWindow(start=time(8, 30), end=time(19, 45), days=(1, 3, 5))


def test_window_parse_defaults_to_monday_to_saturday():
    window = CallingWindow.parse("09:00", "20:00")

    assert window.days == DEFAULT_DAYS


def test_window_parse_accepts_one_hour_digit():
    window = CallingWindow.parse("8:30", " 9:45")

    assert (window.start, window.end) == (time(8, 30), time(9, 45))


def test_window_parse_still_rejects_seven():
    with pytest.raises(WindowError, match="federal limit"):
        CallingWindow.parse("7:00", "20:00")


def test_window_parse_rejects_non_time():
    with pytest.raises(WindowError, match="use HH:MM"):
        CallingWindow.parse("nine", "20:00")


def test_window_parse_validates_limits():
    with pytest.raises(WindowError, match="federal limit"):
        CallingWindow.parse("07:00", "22:00")


def test_window_allows_start_inclusive():
    monday_nine = datetime(2026, 3, 9, 9, 0)

    assert CallingWindow().allows(monday_nine)


def test_window_allows_end_exclusive():
    monday_eight_pm = datetime(2026, 3, 9, 20, 0)
    just_before = datetime(2026, 3, 9, 19, 59, 59, 999999)

    assert not CallingWindow().allows(monday_eight_pm)
    assert CallingWindow().allows(just_before)


def test_window_allows_rejects_unlisted_day():
    sunday_noon = datetime(2026, 3, 8, 12, 0)

    assert not CallingWindow().allows(sunday_noon)
