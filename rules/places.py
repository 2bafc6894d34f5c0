"""Where a contact may be: its candidate time zones and US states.

The zones are the contact's stated zone together with the zones that
phonenumbers maps the number to (down to the exchange where its data allows).
A number of a non-geographic type (toll-free, premium rate, VoIP...) in a
country with several zones, and a number phonenumbers cannot place, add no
zone: such a contact needs a stated zone.

The states are the stated state together with the state that phonenumbers'
geocoder names for a US number. Both are kept when they differ, so a Florida
area code brings Florida's rules whatever the address states.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import geocoder, timezone
from phonenumbers.tzdata import TIMEZONE_DATA

UNKNOWN_ZONE_PROBLEM = (
    "time zone unknown for this number: add a timezone column such as America/Chicago"
)
INVALID_ZONE_PROBLEM = (
    "the contact's time zone is not a valid IANA name: use one such as America/Chicago"
)
INVALID_STATE_PROBLEM = (
    "the contact's state is not a US state or Canadian province: use a "
    "two-letter code such as FL, or leave it empty"
)

US_STATES = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
    "AS": "American Samoa",
    "GU": "Guam",
    "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico",
    "VI": "U.S. Virgin Islands",
}

# Accepted in a contact's state column so that Canadian contacts import, but
# no state rules apply to them.
CANADIAN_PROVINCES = {
    "AB": "Alberta",
    "BC": "British Columbia",
    "MB": "Manitoba",
    "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador",
    "NS": "Nova Scotia",
    "NT": "Northwest Territories",
    "NU": "Nunavut",
    "ON": "Ontario",
    "PE": "Prince Edward Island",
    "QC": "Quebec",
    "SK": "Saskatchewan",
    "YT": "Yukon",
}

# Names that phonenumbers' English geocoder uses for US places besides the
# plain state names (checked against phonenumbers 9.0).
_GEOCODER_NAMES = {
    "washington state": "WA",
    "washington d.c.": "DC",
    "washington, d.c.": "DC",
}

_CODES_BY_NAME = {
    name.lower(): code for code, name in (US_STATES | CANADIAN_PROVINCES).items()
} | _GEOCODER_NAMES


# Zone files that zoneinfo can load but that name no place: "localtime" is
# whatever zone the machine running the engine is set to.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


class PlaceError(ValueError):
    """A stated time zone or state that cannot be used."""


@dataclass(frozen=True)
class ContactPlace:
    """Candidate time zones and US states of one contact.

    Attributes:
        zones: Candidate IANA time zones. The calling window must hold in all.
        states: Two-letter codes of the US states, DC and territories whose
            rules may apply.
        problem: Why the contact must not be called, with what to supply,
            or None. It never contains the phone number.
    """

    zones: tuple[str, ...]
    states: tuple[str, ...]
    problem: str | None = None


def locate(
    phone_e164: str, stated_timezone: str | None, stated_state: str | None
) -> ContactPlace:
    """Find a contact's candidate zones and states.

    An invalid stated zone or state is reported as the place's problem rather
    than raised, so that the check before a dial can record it as the reason.
    """
    number = _parse(phone_e164)
    states = set(_number_states(number))
    zones = set(_number_zones(number))
    problem = None
    try:
        zones.update(_stated_zones(stated_timezone))
    except PlaceError:
        problem = INVALID_ZONE_PROBLEM
    try:
        states.update(_stated_states(stated_state))
    except PlaceError:
        problem = problem or INVALID_STATE_PROBLEM
    if problem is None and not zones:
        problem = UNKNOWN_ZONE_PROBLEM
    return ContactPlace(
        zones=tuple(sorted(zones)), states=tuple(sorted(states)), problem=problem
    )


def validate_timezone(name: str) -> str:
    """Return the IANA zone name in its canonical case, such as America/Chicago.

    Raises:
        PlaceError: zoneinfo does not list the name, or it names the machine's
            own zone ("localtime") rather than a place.
    """
    found = _zone_names().get(name.strip().lower())
    if found is None:
        raise PlaceError(
            f"time zone {name!r} is not a valid IANA name: use one such as "
            "America/Chicago"
        )
    return found


@cache
def _zone_names() -> dict[str, str]:
    names = zoneinfo.available_timezones() - _NOT_PLACES
    return {name.lower(): name for name in names}


def normalize_state(text: str) -> str:
    """Return the two-letter code of a US state, territory or Canadian province.

    Accepts the code or the full name in any case, such as "fl" or "Florida".

    Raises:
        PlaceError: the text names no such place.
    """
    cleaned = " ".join(text.split())
    code = cleaned.upper()
    if code in US_STATES or code in CANADIAN_PROVINCES:
        return code
    found = _CODES_BY_NAME.get(cleaned.lower())
    if found is None:
        raise PlaceError(
            f"state {text!r} is not a US state or Canadian province: use a "
            "two-letter code such as FL"
        )
    return found


def _parse(phone_e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return number


def _number_zones(number: phonenumbers.PhoneNumber | None) -> tuple[str, ...]:
    if number is None:
        return ()
    zones = tuple(
        zone
        for zone in timezone.time_zones_for_number(number)
        if zone != timezone.UNKNOWN_TIMEZONE
    )
    # For a number it cannot place, phonenumbers returns every zone of the
    # country (all of North America and the Pacific territories for +1).
    # Those zones are no evidence of where the contact is.
    # TODO(rules): countries whose zones all keep the same time (the UK with
    # Guernsey, Jersey and the Isle of Man) are treated the same way, so
    # their mobile numbers need a stated zone before they are called.
    if len(zones) > 1 and _is_country_wide(number, zones):
        return ()
    return zones


def _is_country_wide(number: phonenumbers.PhoneNumber, zones: tuple[str, ...]) -> bool:
    number_type = phonenumbers.number_type(number)
    if not phonenumbers.is_number_type_geographical(number_type, number.country_code):
        return True
    # NOTE: TIMEZONE_DATA is phonenumbers' generated prefix table, in which
    # the country calling code is the key of the country-wide list.
    return zones == TIMEZONE_DATA.get(str(number.country_code))


def _number_states(number: phonenumbers.PhoneNumber | None) -> tuple[str, ...]:
    if number is None or phonenumbers.region_code_for_number(number) != "US":
        return ()
    description = geocoder.description_for_number(number, "en")
    code = _state_from_description(description)
    return (code,) if code is not None else ()


def _state_from_description(description: str) -> str | None:
    """Map a geocoder description ("Florida", "Tallahassee, FL") to a code."""
    known = _CODES_BY_NAME.get(description.strip().lower())
    if known in US_STATES:
        return known
    _, _, suffix = description.rpartition(", ")
    if suffix in US_STATES:
        return suffix
    return None


def _stated_zones(stated_timezone: str | None) -> tuple[str, ...]:
    if stated_timezone is None or not stated_timezone.strip():
        return ()
    return (validate_timezone(stated_timezone),)


def _stated_states(stated_state: str | None) -> tuple[str, ...]:
    if stated_state is None or not stated_state.strip():
        return ()
    code = normalize_state(stated_state)
    return (code,) if code in US_STATES else ()
