import phonenumbers
import pytest

from rules.places import (
    INVALID_STATE_PROBLEM,
    INVALID_ZONE_PROBLEM,
    UNKNOWN_ZONE_PROBLEM,
    PlaceError,
    locate,
    normalize_state,
    validate_timezone,
)

MIAMI = "+13055551234"
TALLAHASSEE = "+18502221234"
SOUTH_DAKOTA = "+16054441234"
TOLL_FREE = "+18005551234"
PREMIUM = "+19005551234"
UK_LANDLINE = "+442071234567"
UK_MOBILE = "+447911123456"
FRENCH_MOBILE = "+33612345678"
UNASSIGNED = "+15555551234"


def test_locate_florida_area_code():
    place = locate(MIAMI, None, None)

    assert place.zones == ("America/New_York",)
    assert place.states == ("FL",)
    assert place.problem is None


def test_locate_reads_state_from_city_description():
    place = locate(TALLAHASSEE, None, None)

    assert place.states == ("FL",)


@pytest.mark.parametrize(
    ("phone", "state"), [("+12025551234", "DC"), ("+12065551234", "WA")]
)
def test_locate_reads_geocoder_special_names(phone, state):
    assert locate(phone, None, None).states == (state,)


def test_locate_area_code_spanning_two_zones():
    place = locate(SOUTH_DAKOTA, None, None)

    assert place.zones == ("America/Denver", "America/North_Dakota/Center")


def test_locate_adds_stated_zone_to_number_zones():
    place = locate(MIAMI, "America/Chicago", None)

    assert place.zones == ("America/Chicago", "America/New_York")


@pytest.mark.parametrize("phone", [TOLL_FREE, PREMIUM, UNASSIGNED, "not a number"])
def test_locate_placeless_number_without_zone_is_unknown(phone):
    place = locate(phone, None, None)

    assert place.zones == ()
    assert place.problem == UNKNOWN_ZONE_PROBLEM


@pytest.mark.parametrize("phone", [TOLL_FREE, PREMIUM, UNASSIGNED])
def test_locate_placeless_number_uses_stated_zone_alone(phone):
    place = locate(phone, "America/Denver", None)

    assert place.zones == ("America/Denver",)
    assert place.problem is None


def test_locate_toll_free_number_has_no_state():
    assert locate(TOLL_FREE, "America/Denver", None).states == ()


def test_unknown_zone_problem_says_what_to_supply():
    assert "add a timezone column such as America/Chicago" in UNKNOWN_ZONE_PROBLEM


def test_locate_country_wide_mobile_needs_stated_zone():
    # phonenumbers maps UK mobiles to London, Guernsey, Jersey and the Isle
    # of Man: the list for the whole country, so no evidence of a place.
    assert locate(UK_MOBILE, None, None).problem == UNKNOWN_ZONE_PROBLEM


def test_locate_single_zone_country_places_any_number():
    assert locate(FRENCH_MOBILE, None, None).zones == ("Europe/Paris",)


def test_locate_foreign_landline_has_no_us_state():
    place = locate(UK_LANDLINE, None, None)

    assert place.zones == ("Europe/London",)
    assert place.states == ()


def test_locate_keeps_both_states_when_they_differ():
    place = locate(MIAMI, None, "TX")

    assert place.states == ("FL", "TX")


def test_locate_accepts_state_name_in_any_case():
    assert locate(TOLL_FREE, "America/Chicago", "oklahoma").states == ("OK",)


def test_locate_canadian_province_adds_no_state():
    place = locate("+14165551234", None, "ON")

    assert place.states == ()
    assert place.problem is None


def test_locate_invalid_stated_zone_is_a_problem():
    place = locate(MIAMI, "America/Chicgo", None)

    assert place.problem == INVALID_ZONE_PROBLEM


def test_locate_invalid_stated_state_is_a_problem():
    place = locate(MIAMI, None, "Narnia")

    assert place.problem == INVALID_STATE_PROBLEM


@pytest.mark.parametrize(
    ("zone", "state"),
    [(None, None), ("America/Chicgo", None), (None, "Narnia")],
)
def test_locate_problem_never_repeats_number_or_input(zone, state):
    place = locate(TOLL_FREE, zone, state)

    assert "5551234" not in (place.problem or "")
    assert "Chicgo" not in (place.problem or "")
    assert "Narnia" not in (place.problem or "")


def test_locate_us_area_codes_have_states():
    missing = []
    for area_code in range(200, 1000):
        number = phonenumbers.parse(f"+1{area_code}2225555")
        if not phonenumbers.is_valid_number(number):
            continue
        if phonenumbers.region_code_for_number(number) != "US":
            continue
        if not phonenumbers.is_number_geographical(number):
            continue
        if not locate(f"+1{area_code}2225555", None, None).states:
            missing.append(area_code)

    assert missing == []


def test_validate_timezone_returns_canonical_case():
    assert validate_timezone(" america/chicago ") == "America/Chicago"


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "localtime", "../etc/passwd"])
def test_validate_timezone_rejects_non_places(name):
    with pytest.raises(PlaceError, match="not a valid IANA name"):
        validate_timezone(name)


@pytest.mark.parametrize(
    ("text", "code"),
    [("fl", "FL"), ("Florida", "FL"), ("new  york", "NY"), ("QC", "QC"), ("DC", "DC")],
)
def test_normalize_state_accepts_codes_and_names(text, code):
    assert normalize_state(text) == code


def test_normalize_state_rejects_unknown_text():
    with pytest.raises(PlaceError, match="two-letter code such as FL"):
        normalize_state("Floridaa")
