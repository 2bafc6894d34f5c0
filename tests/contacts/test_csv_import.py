import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contacts.csv_import import (
    ContactParse,
    DuplicateRow,
    ImportFileError,
    ParsedContact,
    ParsedRow,
    RejectedRow,
    header_key,
    parse_contacts,
)
from contacts.phones import Phone


def open_csv(text: str, **options: str) -> ContactParse:
    return parse_contacts(io.BytesIO(text.encode()), **options)


def parse_rows(text: str, **options: str) -> list[ParsedRow]:
    with open_csv(text, **options) as parse:
        return list(parse)


def only_contact(text: str, **options: str) -> ParsedContact:
    (row,) = parse_rows(text, **options)
    assert isinstance(row, ParsedContact)
    return row


def only_rejected(text: str, **options: str) -> RejectedRow:
    (row,) = parse_rows(text, **options)
    assert isinstance(row, RejectedRow)
    return row


class OneWayStream(io.RawIOBase):
    """A binary stream that cannot seek, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- encoding and delimiter ---------------------------------------------------


def test_parse_utf8_byte_order_mark() -> None:
    data = b"\xef\xbb\xbfphone,first_name\n+12025550112,Ana\n"

    with parse_contacts(io.BytesIO(data)) as parse:
        rows = list(parse)

    assert rows == [
        ParsedContact(
            row=2,
            phone=Phone("+12025550112"),
            name="Ana",
            variables={"first_name": "Ana"},
        )
    ]


def test_parse_byte_order_mark_leaves_header_clean() -> None:
    data = b"\xef\xbb\xbfphone,first_name\n+12025550112,Ana\n"

    with parse_contacts(io.BytesIO(data)) as parse:
        assert parse.phone_column == "phone"


def test_parse_utf16_with_byte_order_mark() -> None:
    data = "phone\tname\r\n2025550118\tZoë\r\n".encode("utf-16")

    with parse_contacts(io.BytesIO(data)) as parse:
        (row,) = list(parse)

    assert isinstance(row, ParsedContact)
    assert row.name == "Zoë"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("phone,name\n2025550113,Ben\n", ","),
        ("phone;name\n2025550113;Ben\n", ";"),
        ("phone\tname\n2025550113\tBen\n", "\t"),
        ('phone;name;note\n2025550113;"Lee, Ben";x\n', ";"),
        ("phone;name\n2025550113;Lee, Ben\n2025550114;Ng, Al\n", ";"),
        ('name,"notes, misc",phone\n2025550113,Ben,x\n', ","),
        ("phone\n2025550113\n", ","),
    ],
)
def test_parse_detects_delimiter(text: str, delimiter: str) -> None:
    with open_csv(text) as parse:
        assert parse.layout.delimiter == delimiter


def test_parse_semicolon_rows() -> None:
    rows = parse_rows("phone;first_name\n(202) 555-0113;Ben\n+1 202 555 0114;Cleo\n")

    assert [row.phone.e164 for row in rows if isinstance(row, ParsedContact)] == [
        "+12025550113",
        "+12025550114",
    ]


def test_parse_crlf_line_endings() -> None:
    contact = only_contact("phone,name\r\n2025550113,Ben\r\n")

    assert contact.name == "Ben"


def test_parse_multiline_quoted_value() -> None:
    contact = only_contact('phone,notes\n2025550113,"line one\nline two"\n')

    assert contact.variables == {"notes": "line one\nline two"}


# --- the phone column ---------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "phone",
        "Phone",
        "PHONE",
        "Phone 1",
        "Mobile",
        "Phone Number",
        "phone_number",
        "number",
        "Mobile Phone",
        "cell",
        "Tel",
        "Telephone",
        " Phone ",
    ],
)
def test_parse_finds_phone_column(header: str) -> None:
    contact = only_contact(f"name,{header}\nBen,2025550113\n")

    assert contact.phone.e164 == "+12025550113"


def test_parse_prefers_phone_over_mobile() -> None:
    with open_csv("Mobile,Phone\n2025550113,2025550114\n") as parse:
        assert parse.phone_column == "Phone"


def test_parse_other_phone_column_is_variable() -> None:
    contact = only_contact("Mobile,Phone\n2025550113,2025550114\n")

    assert contact.variables == {"Mobile": "2025550113"}


def test_parse_phone_column_option() -> None:
    contact = only_contact("Phone,Work\n2025550113,2025550114\n", phone_column="Work")

    assert contact.phone.e164 == "+12025550114"


def test_parse_phone_column_option_any_case() -> None:
    with open_csv("name,Work Phone\nBen,2025550114\n", phone_column="work_phone") as p:
        assert p.phone_column == "Work Phone"


def test_parse_phone_column_option_not_found() -> None:
    with pytest.raises(ImportFileError) as caught:
        open_csv("name,phone\nBen,2025550114\n", phone_column="Work")

    assert str(caught.value) == (
        "phone column 'Work' not found; the file has columns: 'name', 'phone'"
    )


def test_parse_no_phone_column_lists_columns() -> None:
    with pytest.raises(ImportFileError) as caught:
        open_csv("first_name,notes\nIvy,x\n")

    assert "the file has columns: 'first_name', 'notes'" in str(caught.value)


def test_parse_no_phone_column_says_so() -> None:
    with pytest.raises(ImportFileError, match="no phone number column found"):
        open_csv("first_name,notes\nIvy,x\n")


def test_parse_duplicate_header_rejected() -> None:
    with pytest.raises(ImportFileError, match="'notes' appears twice"):
        open_csv("phone,notes,notes\n2025550113,a,b\n")


def test_header_key_ignores_case_space_and_punctuation() -> None:
    assert header_key(" Phone_Number #") == "phonenumber"


# --- rows -----------------------------------------------------------------------


def test_parse_row_numbers_count_blanks() -> None:
    rows = parse_rows("phone\n2025550113\n\n2025550114\n,\n2025550115\n")

    assert [row.row for row in rows] == [2, 4, 6]


def test_parse_leading_blank_lines_before_header() -> None:
    rows = parse_rows("\n\nphone\n2025550113\n")

    assert [row.row for row in rows] == [4]


def test_parse_header_only_has_no_rows() -> None:
    with open_csv("phone,name\n") as parse:
        assert list(parse) == []


def test_parse_counts_data_rows_up_front() -> None:
    with open_csv("phone\n2025550113\n\nbad\n2025550113\n") as parse:
        assert parse.layout.data_rows == 3


def test_parse_missing_phone_cell_rejected() -> None:
    rejected = only_rejected("phone,name\n,Ben\n")

    assert rejected == RejectedRow(row=2, reason="missing phone number", value="")


def test_parse_scientific_notation_rejected() -> None:
    rows = parse_rows('phone,name\n1.20256E+10,Dee\n"12025550115",Eli\n')

    assert isinstance(rows[0], RejectedRow)
    assert "scientific notation" in rows[0].reason
    assert rows[0].row == 2


def test_parse_scientific_notation_keeps_next_row() -> None:
    rows = parse_rows('phone,name\n1.20256E+10,Dee\n"12025550115",Eli\n')

    assert rows[1] == ParsedContact(row=3, phone=Phone("+12025550115"), name="Eli")


def test_parse_bad_row_keeps_neighbours() -> None:
    rows = parse_rows("phone\n2025550113\nnot a number\n2025550114\n")

    assert [type(row).__name__ for row in rows] == [
        "ParsedContact",
        "RejectedRow",
        "ParsedContact",
    ]


def test_parse_too_many_values_rejected() -> None:
    rejected = only_rejected("phone,name\n2025550113,Lee, Ben\n")

    assert rejected.reason == (
        "the row has 3 values but the header has 2 columns; "
        "quote values that contain the delimiter"
    )


def test_parse_too_many_values_keeps_row_text() -> None:
    rejected = only_rejected("phone,name\n2025550113,Lee, Ben\n")

    assert rejected.value == "2025550113,Lee, Ben"


def test_parse_trailing_empty_cells_accepted() -> None:
    contact = only_contact("phone,name\n2025550113,Ben,,\n")

    assert contact.name == "Ben"


def test_parse_short_row_accepted() -> None:
    contact = only_contact("phone,name,city\n2025550113,Ben\n")

    assert contact.variables == {}


def test_parse_rejected_value_cut_short() -> None:
    rejected = only_rejected("phone\n" + "9" * 500 + "\n")

    assert len(rejected.value) == 200


# --- fields and variables -----------------------------------------------------


def test_parse_first_and_last_name_make_name() -> None:
    contact = only_contact("phone,First Name,Last Name\n2025550113,Ana,Ruiz\n")

    assert contact.name == "Ana Ruiz"


def test_parse_first_and_last_name_stay_variables() -> None:
    contact = only_contact("phone,first_name,last_name\n2025550113,Ana,Ruiz\n")

    assert contact.variables == {"first_name": "Ana", "last_name": "Ruiz"}


def test_parse_name_column_wins_over_parts() -> None:
    contact = only_contact("phone,name,first_name\n2025550113,Ana Ruiz,A\n")

    assert contact.name == "Ana Ruiz"


def test_parse_full_name_column() -> None:
    contact = only_contact("phone,Full Name\n2025550113,Ana Ruiz\n")

    assert contact.name == "Ana Ruiz"


def test_parse_empty_name_is_none() -> None:
    contact = only_contact("phone,name\n2025550113,\n")

    assert contact.name is None


def test_parse_variables_stripped() -> None:
    contact = only_contact(
        "phone, Plan Name ,Notes,Empty\n2025550113,  Gold  ,call after 5,\n"
    )

    assert contact.variables == {"Plan Name": "Gold", "Notes": "call after 5"}


def test_parse_unnamed_column_value_kept() -> None:
    contact = only_contact("phone,\n2025550113,extra\n")

    assert contact.variables == {"column 2": "extra"}


@pytest.mark.parametrize("header", ["timezone", "Time Zone", "tz"])
def test_parse_timezone_column(header: str) -> None:
    contact = only_contact(f"phone,{header}\n2025550113,america/chicago\n")

    assert contact.timezone == "America/Chicago"


@pytest.mark.parametrize("cell", ["EST", "MST7MDT"])
def test_parse_fixed_offset_abbreviation_rejected(cell: str) -> None:
    rejected = only_rejected(f"phone,tz\n2025550113,{cell}\n")

    assert rejected.reason.startswith("unknown time zone")


def test_parse_unknown_timezone_rejected() -> None:
    rejected = only_rejected("phone,tz\n2025550113,Mars/Base\n")

    assert rejected.reason.startswith("unknown time zone")


@pytest.mark.parametrize(("cell", "code"), [("fl", "FL"), ("Florida", "FL")])
def test_parse_state_column(cell: str, code: str) -> None:
    contact = only_contact(f"phone,State\n2025550113,{cell}\n")

    assert contact.state == code


def test_parse_unknown_state_rejected() -> None:
    rejected = only_rejected("phone,state\n2025550113,Atlantis\n")

    assert rejected.value == "Atlantis"


# --- consent --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "basis"),
    [
        ("existing_customer", "existing_customer"),
        ("inquiry", "inquiry"),
        ("Express", "express"),
        ("Express Written", "express_written"),
        ("express-written", "express_written"),
    ],
)
def test_parse_consent_basis(cell: str, basis: str) -> None:
    contact = only_contact(f"phone,consent\n2025550113,{cell}\n")

    assert contact.consent is not None
    assert contact.consent.basis == basis


def test_parse_unknown_consent_rejected() -> None:
    rejected = only_rejected("phone,consent_basis\n2025550113,yes\n")

    assert rejected.reason == (
        "unknown consent basis; use one of "
        "existing_customer, inquiry, express, express_written"
    )


def test_parse_consent_source_and_time() -> None:
    contact = only_contact(
        "phone,consent,consent_source,consent_at\n"
        "2025550113,express,web form,2024-05-01T14:30:00Z\n"
    )

    assert contact.consent is not None
    assert contact.consent.source == "web form"
    assert contact.consent.at == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


def test_parse_consent_date_without_offset_is_utc() -> None:
    contact = only_contact("phone,consent,consent_at\n2025550113,express,2024-05-01\n")

    assert contact.consent is not None
    assert contact.consent.at == datetime(2024, 5, 1, tzinfo=UTC)


def test_parse_consent_time_defaults_to_now() -> None:
    before = datetime.now(UTC)

    contact = only_contact("phone,consent\n2025550113,express\n")

    assert contact.consent is not None
    assert contact.consent.at >= before


def test_parse_invalid_consent_date_rejected() -> None:
    rejected = only_rejected("phone,consent,consent_at\n2025550113,express,5/1/24\n")

    assert rejected.reason.startswith("invalid consent date")


def test_parse_no_consent_without_basis() -> None:
    contact = only_contact("phone,consent,consent_source\n2025550113,,web\n")

    assert contact.consent is None


def test_parse_file_consent_fills_rows() -> None:
    contact = only_contact(
        "phone\n2025550113\n", consent_basis="inquiry", consent_source="form"
    )

    assert contact.consent is not None
    assert contact.consent.basis == "inquiry"
    assert contact.consent.source == "form"


def test_parse_row_consent_wins_over_file_consent() -> None:
    contact = only_contact(
        "phone,consent\n2025550113,express\n", consent_basis="inquiry"
    )

    assert contact.consent is not None
    assert contact.consent.basis == "express"


def test_parse_unknown_file_consent_basis() -> None:
    with pytest.raises(ValueError, match="unknown consent basis 'maybe'"):
        open_csv("phone\n2025550113\n", consent_basis="maybe")


# --- duplicates -------------------------------------------------------------------


def test_parse_extensions_merge_into_one_contact() -> None:
    phone = Phone("+12025550118", "12")

    rows = parse_rows(
        "phone\tnote\n"
        "(202) 555-0118 x12\ta\n"
        "202-555-0118 ext. 12\tb\n"
        "+12025550118;ext=12\tc\n"
    )

    assert rows[0] == ParsedContact(row=2, phone=phone, variables={"note": "a"})
    assert rows[1:] == [
        DuplicateRow(row=3, duplicate_of=2, fill=ParsedContact(row=3, phone=phone)),
        DuplicateRow(row=4, duplicate_of=2, fill=ParsedContact(row=4, phone=phone)),
    ]


def test_parse_duplicate_is_not_rejected() -> None:
    rows = parse_rows("phone\n2025550113\n+1 202 555 0113\n")

    assert isinstance(rows[1], DuplicateRow)


def test_parse_other_extension_is_other_contact() -> None:
    rows = parse_rows("phone\n2025550118 x1\n2025550118 x2\n2025550118\n")

    assert all(isinstance(row, ParsedContact) for row in rows)


def test_parse_duplicate_fills_only_gaps() -> None:
    rows = parse_rows(
        "phone,name,plan,city\n2025550113,Ann,gold,\n2025550113,Bob,silver,Reno\n"
    )

    assert rows[1] == DuplicateRow(
        row=3,
        duplicate_of=2,
        fill=ParsedContact(
            row=3, phone=Phone("+12025550113"), variables={"city": "Reno"}
        ),
    )


def test_parse_later_duplicate_does_not_refill() -> None:
    rows = parse_rows(
        "phone,name,city\n2025550113,,\n2025550113,Bob,Reno\n2025550113,Cy,Elko\n"
    )

    assert rows[2] == DuplicateRow(
        row=4, duplicate_of=2, fill=ParsedContact(row=4, phone=Phone("+12025550113"))
    )


# --- file-level errors and streaming ----------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b" , \n"])
def test_parse_empty_file_rejected(data: bytes) -> None:
    with pytest.raises(ImportFileError, match="the file is empty"):
        parse_contacts(io.BytesIO(data))


def test_parse_not_utf8_rejected_before_any_row() -> None:
    data = b"phone,name\n" + b"2025550113,Ann\n" * 9999 + b"2025550114,Jos\xe9\n"

    with pytest.raises(ImportFileError) as caught:
        parse_contacts(io.BytesIO(data))

    assert str(caught.value) == (
        "the file is not valid UTF-8: byte 0xe9 on line 10001; "
        "save it as 'CSV UTF-8' and import it again"
    )


def test_parse_truncated_utf8_at_end_rejected() -> None:
    data = "phone,name\n2025550113,Zoë\n".encode()[:-2]

    with pytest.raises(ImportFileError, match="not valid UTF-8: byte 0xc3 on line 2"):
        parse_contacts(io.BytesIO(data))


def test_parse_unclosed_quote_rejected() -> None:
    with pytest.raises(ImportFileError, match="row 3 opens a quoted value"):
        open_csv('phone,name\n2025550113,Ann\n2025550114,"Bob\n2025550115,Cy\n')


def test_parse_quote_followed_by_space_accepted() -> None:
    contact = only_contact('phone,name\n2025550113,"Ann" \n')

    assert contact.name == "Ann"


def test_parse_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        open_csv("phone\n2025550113\n", region="XX")


def test_parse_stream_that_cannot_seek() -> None:
    stream = io.BufferedReader(OneWayStream(b"phone\n2025550113\n"))  # type: ignore[type-var]

    with parse_contacts(stream) as parse:
        rows = list(parse)

    assert rows == [ParsedContact(row=2, phone=Phone("+12025550113"))]


def test_parse_leaves_caller_stream_open() -> None:
    stream = io.BytesIO(b"phone\n2025550113\n")

    with parse_contacts(stream) as parse:
        list(parse)

    assert not stream.closed


def test_parse_can_iterate_twice() -> None:
    with open_csv("phone\n2025550113\n2025550113\n") as parse:
        first = list(parse)
        second = list(parse)

    assert first == second


def write_rows(path: Path, rows: int) -> None:
    with path.open("w") as file:
        file.write("phone,name,notes\n")
        for index in range(rows):
            file.write(f"(202) 555-0113,Name {index},a note about row {index}\n")


def peak_parse_memory(path: Path) -> int:
    with path.open("rb") as stream, parse_contacts(stream) as parse:
        rows: Iterator[ParsedRow] = iter(parse)
        next(rows)  # loads the phone number metadata before measuring
        tracemalloc.start()
        for _row in rows:
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_parse_memory_does_not_grow_with_file(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_rows(small, 1_000)
    write_rows(large, 20_000)

    # All rows name one number, so the seen numbers stay one entry. Holding
    # the rows would take megabytes for the large file.
    assert peak_parse_memory(large) < peak_parse_memory(small) + 256 * 1024
