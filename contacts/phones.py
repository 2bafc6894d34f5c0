"""Phone number normalisation to E.164, with the extension kept apart.

The contact import and the do-not-call list both go through `normalize_phone`,
so that the same written number always yields the same key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

# The extension column of the contact table is VARCHAR(20).
MAX_EXTENSION_LENGTH = 20

# A spreadsheet that stores a phone number as a number shows it as
# "1.20256E+10" (or "1,20256E+10" where the comma is the decimal mark) and
# writes that text to the CSV file, so the lost digits cannot be recovered.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+")
# A spreadsheet or a script that reads the column as floats writes
# "12025550115.0", and phonenumbers would read the trailing zero as a digit.
_DECIMAL = re.compile(r"\+?\d{6,}[.,]0+")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

_POSSIBLE_REASONS = {
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without an area code",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
    ValidationResult.TOO_LONG: "too long",
}


@dataclass(frozen=True)
class Phone:
    """A callable number in E.164 and its extension ("" when there is none)."""

    e164: str
    extension: str = ""


class InvalidPhone(ValueError):
    """Raised when a value cannot be read as a valid phone number."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid phone number {value!r}: {reason}")
        self.value = value
        self.reason = reason


def normalize_phone(raw: str, region: str = "US") -> Phone:
    """Parse a number as people and spreadsheets write it into a `Phone`.

    Numbers without a country code are read as numbers of `region` (an ISO
    3166 code such as "US"), which also decides the international dialling
    prefix that is understood ("011" for the US).

    Raises:
        InvalidPhone: the value is empty, mangled by a spreadsheet, or not a
            possible and valid number according to phonenumbers.
        ValueError: `region` is not in phonenumbers' SUPPORTED_REGIONS.
    """
    region = check_region(region)
    value = raw.strip()
    _check_text(raw, value)
    try:
        number = _parse(raw, value, region)
        _check_number(raw, number)
    except InvalidPhone:
        # Most of the world dials abroad with 00, and files exported there
        # keep it even when the default region (the US: 011) does not use it.
        if not value.startswith("00"):
            raise
        number = _parse(raw, "+" + value[2:], region)
        _check_number(raw, number)
    extension = number.extension or ""
    if len(extension) > MAX_EXTENSION_LENGTH:
        raise InvalidPhone(raw, f"extension longer than {MAX_EXTENSION_LENGTH} digits")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, extension=extension)


def _check_text(raw: str, value: str) -> None:
    if not value:
        raise InvalidPhone(raw, "missing phone number")
    if _SCIENTIFIC.fullmatch(value):
        raise InvalidPhone(
            raw,
            "a spreadsheet turned the number into scientific notation and digits "
            "were lost; format the column as text and export the file again",
        )
    if _DECIMAL.fullmatch(value):
        raise InvalidPhone(
            raw,
            "the number was written as a decimal number; format the column as "
            "text and export the file again",
        )


def _parse(raw: str, value: str, region: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(value, region)
    except NumberParseException as error:
        reason = _PARSE_REASONS.get(error.error_type, "not a phone number")
        raise InvalidPhone(raw, reason) from None


def _check_number(raw: str, number: phonenumbers.PhoneNumber) -> None:
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        raise InvalidPhone(raw, _POSSIBLE_REASONS.get(possible, "not possible"))
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            raw, f"not a valid number for country code +{number.country_code}"
        )


def check_region(region: str) -> str:
    """Return `region` in upper case, or raise ValueError if phonenumbers lacks it."""
    code = region.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}: use an ISO 3166 code like 'US'")
    return code
