import pytest

from contacts.phones import InvalidPhone, Phone, check_region, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(202) 555-0113", Phone("+12025550113")),
        ("+1 202 555 0114", Phone("+12025550114")),
        ("12025550115", Phone("+12025550115")),
        ("1-202-555-0116", Phone("+12025550116")),
        ("202.555.0117", Phone("+12025550117")),
        ("011 1 202 555 0119", Phone("+12025550119")),
        ("  +1 (202) 555-0113\u00a0", Phone("+12025550113")),
        ("+44 20 7946 0018", Phone("+442079460018")),
    ],
)
def test_normalize_phone_formats(raw: str, expected: Phone) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["(202) 555-0118 x12", "202-555-0118 ext. 12", "+12025550118;ext=12"],
)
def test_normalize_phone_extension(raw: str) -> None:
    assert normalize_phone(raw) == Phone("+12025550118", "12")


def test_normalize_phone_without_extension_is_empty() -> None:
    assert normalize_phone("+12025550118").extension == ""


def test_normalize_phone_fictional_555_01_is_valid() -> None:
    # phonenumbers treats 555-0100 to 555-0199 as ordinary valid US numbers,
    # which the tests throughout rely on.
    assert normalize_phone("202 555 0100").e164 == "+12025550100"


def test_normalize_phone_uses_region() -> None:
    assert normalize_phone("020 7946 0018", region="GB").e164 == "+442079460018"


def test_normalize_phone_region_case_insensitive() -> None:
    assert normalize_phone("020 7946 0018", region="gb").e164 == "+442079460018"


@pytest.mark.parametrize("raw", ["1.20256E+10", "1,20256E+10", "2.02555e9", "1E+10"])
def test_normalize_phone_rejects_scientific_notation(raw: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(raw)

    assert "scientific notation and digits were lost" in caught.value.reason


def test_normalize_phone_rejects_decimal_number() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("12025550115.0")

    assert "decimal number" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "missing phone number"),
        ("   ", "missing phone number"),
        ("N/A", "not a phone number"),
        ("555-0100", "a local number without an area code"),
        ("+1 202 555 01", "too short"),
        ("1 202 555 01181", "too long"),
        ("+999 123", "unknown country calling code"),
        ("(099) 555-0100", "not a valid number for country code +1"),
    ],
)
def test_normalize_phone_rejects_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(raw)

    assert caught.value.reason == reason


def test_invalid_phone_message_names_value_and_reason() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("N/A")

    assert str(caught.value) == "invalid phone number 'N/A': not a phone number"


def test_invalid_phone_is_value_error() -> None:
    with pytest.raises(ValueError):
        normalize_phone("N/A")


def test_normalize_phone_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        normalize_phone("2025550100", region="XX")


def test_check_region_upper_cases() -> None:
    assert check_region("us") == "US"


def test_normalize_00_prefix_as_plus():
    assert normalize_phone("00 44 20 7946 0959").e164 == "+442079460959"


def test_normalize_00_prefix_with_us_code():
    assert normalize_phone("001 212 555 3023").e164 == "+12125553023"
