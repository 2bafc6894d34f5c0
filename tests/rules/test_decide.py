"""The time check: examples per rule, then properties over random inputs.

The properties compare decide_time with ``allowed``, a direct reading of the
rules at one instant, so they check the search for the earliest moment.
"""

from datetime import UTC, date, datetime, time, timedelta
from random import Random
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.decide import HORIZON, decide_time
from rules.places import UNKNOWN_ZONE_PROBLEM, ContactPlace, locate
from rules.states import STATE_RULES, StateRule
from rules.window import CallingWindow, WindowError

EVERY_DAY = CallingWindow(days=(1, 2, 3, 4, 5, 6, 7))
MIAMI = "+13055551234"
OKLAHOMA_CITY = "+14055551234"
BALTIMORE = "+14105551234"
BIRMINGHAM = "+12055551234"
NEW_ORLEANS = "+15045551234"
DALLAS = "+12145551234"
SOUTH_DAKOTA = "+16054441234"
TOLL_FREE = "+18005551234"
# Tuesday 2026-03-10, 11:00 in New York.
TUESDAY_MORNING = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def hours_ago(*hours: float) -> list[datetime]:
    return [TUESDAY_MORNING - timedelta(hours=h) for h in hours]


# Examples


def test_decide_dials_inside_window():
    verdict = decide_time(TUESDAY_MORNING, locate(MIAMI, None, None), EVERY_DAY, [])

    assert verdict.kind == "dial"
    assert verdict.until is None


@pytest.mark.parametrize("phone", [MIAMI, OKLAHOMA_CITY, BALTIMORE])
def test_decide_third_call_in_24h_waits(phone):
    place = locate(phone, None, None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(0.5, 1, 1.5))

    assert verdict.kind == "wait"


def test_decide_florida_limit_frees_24h_after_oldest_call():
    place = locate(MIAMI, None, None)
    calls = hours_ago(0.5, 1, 1.5)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, calls)

    assert verdict.until == min(calls) + timedelta(hours=24)


def test_decide_florida_limit_reason():
    place = locate(MIAMI, None, None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(0.5, 1, 1.5))

    assert verdict.reason == (
        "daily limit reached: 3 calls in 24 hours under Florida rules "
        "until 2026-03-11 13:30 UTC"
    )


def test_decide_florida_two_calls_leave_room():
    place = locate(MIAMI, None, None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(1, 2))

    assert verdict.kind == "dial"


def test_decide_call_24h_old_not_counted():
    place = locate(MIAMI, None, None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(1, 2, 24))

    assert verdict.kind == "dial"


def test_decide_limit_frees_before_window():
    place = locate(MIAMI, None, None)
    # The oldest call frees its slot at 08:00 New York time, before 09:00.
    calls = [datetime(2026, 3, 10, 12, 0, tzinfo=UTC)] * 3

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, calls)

    assert verdict.until == datetime(2026, 3, 11, 13, 0, tzinfo=UTC)


def test_decide_florida_number_stated_texas():
    place = locate(MIAMI, None, "TX")

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(0.5, 1, 1.5))

    assert verdict.kind == "wait"


def test_decide_no_limit_outside_limited_states():
    place = locate(DALLAS, None, None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, hours_ago(0.5, 1, 1.5))

    assert verdict.kind == "dial"


def test_decide_alabama_no_sunday():
    sunday_eleven_cdt = datetime(2026, 3, 15, 16, 0, tzinfo=UTC)

    verdict = decide_time(
        sunday_eleven_cdt, locate(BIRMINGHAM, None, None), EVERY_DAY, []
    )

    assert verdict.until == datetime(2026, 3, 16, 14, 0, tzinfo=UTC)
    assert verdict.reason.startswith("no calls on Sunday under Alabama rules")


def test_decide_alabama_no_state_holiday():
    christmas_nine_cst = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)

    verdict = decide_time(
        christmas_nine_cst, locate(BIRMINGHAM, None, None), EVERY_DAY, []
    )

    assert verdict.until == datetime(2026, 12, 26, 15, 0, tzinfo=UTC)
    assert verdict.reason.startswith("Alabama state holiday (Christmas Day)")


def test_decide_alabama_state_only_holiday():
    # Confederate Memorial Day, 2026-04-27, is an Alabama holiday only.
    monday_ten_cdt = datetime(2026, 4, 27, 15, 0, tzinfo=UTC)

    verdict = decide_time(monday_ten_cdt, locate(BIRMINGHAM, None, None), EVERY_DAY, [])

    assert verdict.kind == "wait"


def test_decide_louisiana_mardi_gras():
    mardi_gras_noon_cst = datetime(2026, 2, 17, 18, 0, tzinfo=UTC)

    verdict = decide_time(
        mardi_gras_noon_cst, locate(NEW_ORLEANS, None, None), EVERY_DAY, []
    )

    assert verdict.reason.startswith("Louisiana state holiday (Mardi Gras)")


def test_decide_texas_sunday_starts_at_noon():
    sunday_ten_cdt = datetime(2026, 3, 15, 15, 0, tzinfo=UTC)

    verdict = decide_time(sunday_ten_cdt, locate(DALLAS, None, None), EVERY_DAY, [])

    assert verdict.until == datetime(2026, 3, 15, 17, 0, tzinfo=UTC)
    assert verdict.reason == (
        "outside Texas calling hours (12:00-21:00) in America/Chicago until 12:00 local"
    )


def test_decide_state_hours_cut_campaign_window():
    florida_evening = datetime(2026, 3, 11, 0, 30, tzinfo=UTC)
    late_window = CallingWindow(start=time(9), end=time(21))

    verdict = decide_time(florida_evening, locate(MIAMI, None, None), late_window, [])

    assert verdict.reason.startswith("outside Florida calling hours (08:00-20:00)")


def test_decide_multi_zone_waits_for_the_later_zone():
    # 09:30 in Central time is 08:30 in Mountain time.
    central_half_past_nine = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    place = locate(SOUTH_DAKOTA, None, None)

    verdict = decide_time(central_half_past_nine, place, EVERY_DAY, [])

    assert verdict.until == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert verdict.reason == "outside calling hours in America/Denver until 09:00 local"


def test_decide_unknown_zone_is_never():
    verdict = decide_time(TUESDAY_MORNING, locate(TOLL_FREE, None, None), EVERY_DAY, [])

    assert verdict.kind == "never"
    assert verdict.reason == UNKNOWN_ZONE_PROBLEM


def test_decide_unknown_zone_reason_names_what_to_supply():
    verdict = decide_time(TUESDAY_MORNING, locate(TOLL_FREE, None, None), EVERY_DAY, [])

    assert "add a timezone column such as America/Chicago" in verdict.reason


def test_decide_toll_free_with_stated_zone_dials():
    place = locate(TOLL_FREE, "America/Denver", None)
    ten_mountain = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)

    assert decide_time(ten_mountain, place, EVERY_DAY, []).kind == "dial"


def test_decide_zones_without_overlap_are_never():
    place = ContactPlace(zones=("Asia/Tokyo", "America/New_York"), states=())
    short = CallingWindow(start=time(9), end=time(10), days=EVERY_DAY.days)

    verdict = decide_time(TUESDAY_MORNING, place, short, [])

    assert verdict.kind == "never"
    assert "share no allowed moment in the next 14 days" in verdict.reason


def test_decide_place_problem_is_never():
    place = locate(MIAMI, "America/Chicgo", None)

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, [])

    assert verdict.reason == place.problem


def test_decide_rejects_widened_window():
    wide = CallingWindow(start=time(7), end=time(22))

    with pytest.raises(WindowError, match="federal limit"):
        decide_time(TUESDAY_MORNING, locate(MIAMI, None, None), wide, [])


def test_decide_rejects_naive_now():
    with pytest.raises(ValueError, match="naive"):
        decide_time(datetime(2026, 3, 10, 15), locate(MIAMI, None, None), EVERY_DAY, [])


def test_decide_rejects_naive_call_time():
    with pytest.raises(ValueError, match="naive"):
        decide_time(
            TUESDAY_MORNING,
            locate(MIAMI, None, None),
            EVERY_DAY,
            [datetime(2026, 3, 10, 14)],
        )


def test_decide_until_is_utc():
    saturday_night = datetime(2026, 3, 15, 2, 0, tzinfo=UTC)

    verdict = decide_time(saturday_night, locate(MIAMI, None, None), EVERY_DAY, [])

    assert verdict.until.tzinfo is UTC


# Properties

US_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
    "America/North_Dakota/Center",
    "America/Boise",
]
# Zones with odd offsets or transitions: at midnight (Santiago, Havana,
# Beirut), by 30 minutes (Lord Howe), a day apart (Kiritimati, Pago Pago).
OTHER_ZONES = [
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "Europe/London",
    "Europe/Paris",
    "Asia/Beirut",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]
ZONES = US_ZONES + OTHER_ZONES
STATES = ["FL", "OK", "MD", "AL", "LA", "MS", "TX", "WA", "NY", "CA"]
NUMBERS = [
    MIAMI,
    OKLAHOMA_CITY,
    BALTIMORE,
    BIRMINGHAM,
    NEW_ORLEANS,
    DALLAS,
    SOUTH_DAKOTA,
    TOLL_FREE,
    "+16015551234",
    "+12085551234",
    "+12065551234",
    "+442071234567",
]
EARLIEST = datetime(2020, 1, 1)
LATEST = datetime(2035, 12, 31)


def _transition_days() -> list[datetime]:
    """Return UTC midnights of days on which one of ZONES changes offset."""
    days = []
    day = datetime(2025, 1, 1, tzinfo=UTC)
    while day.year < 2028:
        following = day + timedelta(days=1)
        for name in ZONES:
            zone = ZoneInfo(name)
            if (
                day.astimezone(zone).utcoffset()
                != following.astimezone(zone).utcoffset()
            ):
                days.append(day)
                break
        day = following
    return days


TRANSITION_DAYS = _transition_days()

any_instant = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC))
near_transition = st.builds(
    lambda day, shift: day + shift,
    st.sampled_from(TRANSITION_DAYS),
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
)
instants = st.one_of(any_instant, near_transition)


@st.composite
def windows(draw: st.DrawFn) -> CallingWindow:
    """Draw lawful windows, mostly long ones over most days of the week."""
    wide = draw(st.booleans())
    latest_start = 11 * 4 if wide else 21 * 4 - 1
    start = draw(st.integers(min_value=8 * 4, max_value=latest_start))
    earliest_end = max(start + 1, 17 * 4) if wide else start + 1
    end = draw(st.integers(min_value=earliest_end, max_value=21 * 4))
    days = draw(
        st.sets(st.integers(min_value=1, max_value=7), min_size=4 if wide else 1)
    )
    return CallingWindow(
        start=time(start // 4, start % 4 * 15),
        end=time(end // 4, end % 4 * 15),
        days=tuple(sorted(days)),
    )


def sorted_tuple(values: list[str]) -> tuple[str, ...]:
    return tuple(sorted(values))


zone_lists = st.one_of(
    st.lists(st.sampled_from(US_ZONES), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True),
)
direct_places = st.builds(
    ContactPlace,
    zones=zone_lists.map(sorted_tuple),
    states=st.lists(st.sampled_from(STATES), max_size=2, unique=True).map(sorted_tuple),
)
located_places = st.builds(
    locate,
    st.sampled_from(NUMBERS),
    st.one_of(st.none(), st.sampled_from(ZONES)),
    st.one_of(st.none(), st.sampled_from(STATES)),
).filter(lambda place: place.problem is None)
places = st.one_of(direct_places, located_places)
call_ages = st.lists(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=24)), max_size=5
)


def allowed(
    instant: datetime,
    place: ContactPlace,
    window: CallingWindow,
    calls: list[datetime],
) -> bool:
    """Read every rule directly at one instant."""
    rules = [STATE_RULES[code] for code in place.states if code in STATE_RULES]
    for name in place.zones:
        local = instant.astimezone(ZoneInfo(name))
        if not window.allows(local):
            return False
        if not all(state_allows(local, rule) for rule in rules):
            return False
    for rule in rules:
        if rule.hours_zone is not None:
            local = instant.astimezone(ZoneInfo(rule.hours_zone))
            start, end = rule.hours_on(local.isoweekday())
            if not start <= local.time() < end:
                return False
        if rule.max_calls_per_24h is not None:
            counted = [call for call in calls if call > instant - timedelta(hours=24)]
            if len(counted) >= rule.max_calls_per_24h:
                return False
    return True


def state_allows(local: datetime, rule: StateRule) -> bool:
    if rule.no_sundays and local.isoweekday() == 7:
        return False
    if rule.no_state_holidays and is_holiday(rule.code, local.date()):
        return False
    start, end = rule.hours_on(local.isoweekday())
    return start <= local.time() < end


def is_holiday(code: str, day: date) -> bool:
    return day in holidays.country_holidays("US", subdiv=code, years=day.year)


def sample_before(
    start: datetime, end: datetime, calls: list[datetime], random: Random
) -> list[datetime]:
    """Return minute instants in [start, end) to test, plus call expiries."""
    first = start.replace(second=0, microsecond=0)
    if first < start:
        first += timedelta(minutes=1)
    minutes = int((end - first) / timedelta(minutes=1)) + 1
    chosen = set(range(min(minutes, 180)))
    chosen.update(range(max(0, minutes - 180), minutes))
    chosen.update(random.randrange(minutes) for _ in range(min(minutes, 600)))
    samples = [first + timedelta(minutes=index) for index in chosen]
    samples += [call + timedelta(hours=24) for call in calls]
    samples.append(end - timedelta(seconds=1))
    return [sample for sample in samples if start <= sample < end]


@settings(max_examples=300, deadline=None)
@given(now=instants, place=places, window=windows(), ages=call_ages)
def test_property_dial_only_when_every_rule_allows(now, place, window, ages):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    assert (verdict.kind == "dial") == allowed(now, place, window, calls)


@settings(max_examples=300, deadline=None)
@given(now=instants, place=places, window=windows(), ages=call_ages)
def test_property_wait_until_is_allowed(now, place, window, ages):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    if verdict.kind == "wait":
        assert allowed(verdict.until, place, window, calls)


@settings(max_examples=300, deadline=None)
@given(now=instants, place=places, window=windows(), ages=call_ages)
def test_property_wait_until_is_within_horizon(now, place, window, ages):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    if verdict.kind == "wait":
        assert now < verdict.until <= now + HORIZON


@settings(max_examples=200, deadline=None)
@given(
    now=instants, place=places, window=windows(), ages=call_ages, random=st.randoms()
)
def test_property_nothing_allowed_before_until(now, place, window, ages, random):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    if verdict.kind == "wait":
        samples = sample_before(now, verdict.until, calls, random)
        early = [s for s in samples if allowed(s, place, window, calls)]
        assert early == []


@settings(max_examples=200, deadline=None)
@given(
    now=instants, place=places, window=windows(), ages=call_ages, random=st.randoms()
)
def test_property_never_has_no_allowed_moment(now, place, window, ages, random):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    if verdict.kind == "never":
        samples = sample_before(now, now + HORIZON, calls, random)
        early = [s for s in samples if allowed(s, place, window, calls)]
        assert early == []


@settings(max_examples=200, deadline=None)
@given(now=instants, place=places, window=windows(), ages=call_ages)
def test_property_wait_fires_once(now, place, window, ages):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    if verdict.kind == "wait":
        at_until = decide_time(verdict.until, place, window, calls)
        assert at_until.kind == "dial"


@settings(max_examples=200, deadline=None)
@given(now=instants, place=places, window=windows(), ages=call_ages)
def test_property_reason_has_no_phone_digits(now, place, window, ages):
    calls = [now - age for age in ages]

    verdict = decide_time(now, place, window, calls)

    assert "5551234" not in (verdict.reason or "")


@settings(max_examples=100, deadline=None)
@given(
    now=instants,
    phone=st.sampled_from(NUMBERS),
    zone=st.one_of(st.none(), st.sampled_from(ZONES)),
    window=windows(),
)
def test_property_located_problem_is_never(now, phone, zone, window):
    place = locate(phone, zone, None)

    verdict = decide_time(now, place, window, [])

    if place.problem is not None:
        assert verdict.kind == "never"


def test_decide_mississippi_standard_time_hours():
    # The statute gives 8:00 a.m. Central Standard Time: 09:00 in July.
    july_half_past_eight_cdt = datetime(2026, 7, 14, 13, 30, tzinfo=UTC)
    early_window = CallingWindow(start=time(8), end=time(20))

    verdict = decide_time(
        july_half_past_eight_cdt, locate("+16015551234", None, None), early_window, []
    )

    assert verdict.until == datetime(2026, 7, 14, 14, 0, tzinfo=UTC)


def test_decide_reason_when_rule_changes():
    place = locate(MIAMI, None, None)
    # The limit lifts at 08:00 New York time, then the window keeps the wait.
    calls = [datetime(2026, 3, 10, 12, 0, tzinfo=UTC)] * 3

    verdict = decide_time(TUESDAY_MORNING, place, EVERY_DAY, calls)

    assert verdict.reason == (
        "daily limit reached: 3 calls in 24 hours under Florida rules "
        "(calls allowed again 2026-03-11 13:00 UTC)"
    )
