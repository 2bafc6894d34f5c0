"""Streaming parser for the contact CSV files that CRMs and spreadsheets export.

`parse_contacts` reads the whole file once before it returns, so that every
file-level problem (not UTF-8, no phone column, unreadable CSV) raises
`ImportFileError` before a single row is handed out. Iterating the result reads
the file a second time and yields one item per non-blank data row, keeping
only the numbers seen so far in memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import shutil
import tempfile
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import BinaryIO, Self

from holidays.countries.united_states import UnitedStates

from contacts.phones import InvalidPhone, Phone, check_region, normalize_phone
from store.models import ConsentBasis

logger = logging.getLogger(__name__)

# Free-text columns (notes, transcripts pasted into a CRM) can exceed the
# csv module's default of 128 KiB per field.
MAX_FIELD_BYTES = 16 * 1024 * 1024
csv.field_size_limit(MAX_FIELD_BYTES)

DELIMITERS = (",", ";", "\t")
# The header line plus a few data lines decide the delimiter.
DELIMITER_SAMPLE_LINES = 6
MAX_SAMPLE_LINE_CHARS = 65_536
READ_CHUNK_BYTES = 1 << 16
# Rejected values are stored with the import, so a runaway field is cut short.
MAX_REJECTED_VALUE_CHARS = 200

# Header names, compared after `header_key`, in order of preference.
PHONE_HEADERS = (
    "phone",
    "phonenumber",
    "phoneno",
    "phone1",
    "phone1value",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "cell",
    "cellphone",
    "cellnumber",
    "telephone",
    "telephonenumber",
    "tel",
    "primaryphone",
    "contactnumber",
    "number",
)
NAME_HEADERS = ("name", "fullname", "contactname")
FIRST_NAME_HEADERS = ("firstname", "givenname")
LAST_NAME_HEADERS = ("lastname", "surname", "familyname")
TIMEZONE_HEADERS = ("timezone", "tz")
STATE_HEADERS = ("state",)
CONSENT_HEADERS = ("consentbasis", "consent")
CONSENT_SOURCE_HEADERS = ("consentsource",)
CONSENT_AT_HEADERS = ("consentat", "consentdate")

CONSENT_BASES = tuple(basis.value for basis in ConsentBasis)


class ImportFileError(ValueError):
    """Raised when a file as a whole cannot be imported. No row is used then."""


@dataclass(frozen=True)
class Consent:
    """The basis on which a contact may be called, where it came from and when."""

    basis: str
    source: str | None
    at: datetime


@dataclass(frozen=True)
class ParsedContact:
    """A data row read into a contact. None and absent keys mean "not given"."""

    row: int
    phone: Phone
    name: str | None = None
    timezone: str | None = None
    state: str | None = None
    consent: Consent | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DuplicateRow:
    """A later row for a number seen before, in row `duplicate_of`.

    `fill` holds only the values that the earlier rows for this number left
    empty. Applying it after the first row gives the merged contact.
    """

    row: int
    duplicate_of: int
    fill: ParsedContact


@dataclass(frozen=True)
class RejectedRow:
    """A data row that cannot be imported, with the reason and the value at fault."""

    row: int
    reason: str
    value: str


ParsedRow = ParsedContact | DuplicateRow | RejectedRow


@dataclass(frozen=True)
class Columns:
    """The 0-based column indexes of the recognised fields."""

    headers: tuple[str, ...]
    phone: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    timezone: int | None = None
    state: int | None = None
    consent: int | None = None
    consent_source: int | None = None
    consent_at: int | None = None
    # (column index, variable name) for every column kept as a variable.
    variables: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class FileLayout:
    """The encoding, delimiter and row counts found by reading the file once."""

    encoding: str
    delimiter: str
    header_row: int
    data_rows: int


class ContactParse:
    """An opened contact file: its layout, and its rows when iterated.

    Rows are numbered as a spreadsheet shows them: the header is row 1 when
    the file starts with it, and blank lines count as rows but are skipped.
    """

    def __init__(
        self,
        source: BinaryIO,
        start: int,
        layout: FileLayout,
        columns: Columns,
        reader: RowReader,
        *,
        owns_source: bool,
    ) -> None:
        self._source = source
        self._start = start
        self._owns_source = owns_source
        self.layout = layout
        self.columns = columns
        self._reader = reader

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete the temporary copy of a stream that could not seek, if any."""
        if self._owns_source:
            self._source.close()

    @property
    def phone_column(self) -> str:
        return self.columns.headers[self.columns.phone]

    def __iter__(self) -> Iterator[ParsedRow]:
        seen = SeenNumbers()
        records = _records(
            self._source, self._start, self.layout.encoding, self.layout.delimiter
        )
        for row, cells in records:
            if row <= self.layout.header_row:
                continue
            parsed = self._reader.read(row, cells)
            if isinstance(parsed, ParsedContact):
                yield seen.merge(parsed)
            elif parsed is not None:
                yield parsed


def parse_contacts(
    stream: BinaryIO,
    *,
    region: str = "US",
    phone_column: str | None = None,
    consent_basis: str | None = None,
    consent_source: str | None = None,
) -> ContactParse:
    """Open a contact CSV file, checking it as a whole before any row is used.

    Args:
        stream: the file, in binary mode. A stream that cannot seek is copied
            to a temporary file first, because the file is read twice.
        region: ISO 3166 region for numbers written without a country code.
        phone_column: the header of the phone column, when guessing from the
            header names is not wanted.
        consent_basis: the basis for every row whose own consent cell is empty.
        consent_source: the source for those rows and for rows without one.

    Raises:
        ImportFileError: the file is empty, not UTF-8 (or UTF-16 with a
            byte-order mark), not readable as CSV, or has no phone column.
        ValueError: `region` or `consent_basis` is not a known value.
    """
    region = check_region(region)
    _check_consent_basis(consent_basis)
    source, start, owns_source = _rewindable(stream)
    try:
        layout, headers = _scan(source, start)
        columns = resolve_columns(headers, phone_column)
    except ImportFileError:
        if owns_source:
            source.close()
        raise
    logger.debug(
        "contact file: %s, delimiter %r, phone column %r, %s data rows",
        layout.encoding,
        layout.delimiter,
        headers[columns.phone],
        layout.data_rows,
    )
    reader = RowReader(
        columns,
        region=region,
        delimiter=layout.delimiter,
        consent_basis=consent_basis,
        consent_source=consent_source,
    )
    return ContactParse(source, start, layout, columns, reader, owns_source=owns_source)


def _check_consent_basis(basis: str | None) -> None:
    if basis is not None and basis not in CONSENT_BASES:
        raise ValueError(
            f"unknown consent basis {basis!r}: use one of {', '.join(CONSENT_BASES)}"
        )


def _rewindable(stream: BinaryIO) -> tuple[BinaryIO, int, bool]:
    if stream.seekable():
        return stream, stream.tell(), False
    # ContactParse.close deletes the copy, so no context manager here.
    copy = tempfile.TemporaryFile()  # noqa: SIM115
    shutil.copyfileobj(stream, copy)
    return copy, 0, True


# --- the file as a whole ---------------------------------------------------


def _scan(source: BinaryIO, start: int) -> tuple[FileLayout, list[str]]:
    encoding = _detect_encoding(source, start)
    _check_encoding(source, start, encoding)
    delimiter = _detect_delimiter(_sample_lines(source, start, encoding))
    header_row = 0
    headers: list[str] = []
    data_rows = 0
    for row, cells in _records(source, start, encoding, delimiter):
        if _is_blank(cells):
            continue
        if header_row:
            data_rows += 1
        else:
            header_row, headers = row, [cell.strip() for cell in cells]
    if not header_row:
        raise ImportFileError("the file is empty: it has no header row")
    _check_quotes_closed(source, start, encoding, delimiter)
    return FileLayout(encoding, delimiter, header_row, data_rows), headers


def _detect_encoding(source: BinaryIO, start: int) -> str:
    source.seek(start)
    head = source.read(2)
    source.seek(start)
    # Excel's "Unicode Text" export is UTF-16 with a byte-order mark.
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    # utf-8-sig drops a UTF-8 byte-order mark and reads files without one.
    return "utf-8-sig"


def _check_encoding(source: BinaryIO, start: int, encoding: str) -> None:
    """Raise ImportFileError, naming the first invalid byte, if decoding fails."""
    source.seek(start)
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    line = 1
    while chunk := source.read(READ_CHUNK_BYTES):
        # Bytes of a character split across chunks wait in the decoder.
        pending = decoder.getstate()[0]
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            position = offset - len(pending) + error.start
            line += error.object[: error.start].count(b"\n")
            raise _decode_error(error, encoding, position, line) from None
        offset += len(chunk)
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise _decode_error(error, encoding, offset - len(error.object), line) from None


def _decode_error(
    error: UnicodeDecodeError, encoding: str, position: int, line: int
) -> ImportFileError:
    byte = error.object[error.start : error.start + 1].hex()
    if encoding == "utf-16":
        return ImportFileError(
            f"the file is not valid UTF-16: invalid data at byte {position}; "
            "save it as 'CSV UTF-8' and import it again"
        )
    return ImportFileError(
        f"the file is not valid UTF-8: byte 0x{byte} on line {line}; "
        "save it as 'CSV UTF-8' and import it again"
    )


def _sample_lines(source: BinaryIO, start: int, encoding: str) -> list[str]:
    source.seek(start)
    text = io.TextIOWrapper(source, encoding=encoding, newline="")
    lines: list[str] = []
    try:
        while len(lines) < DELIMITER_SAMPLE_LINES:
            line = text.readline(MAX_SAMPLE_LINE_CHARS)
            if not line:
                break
            if line.strip():
                lines.append(line)
    finally:
        text.detach()
    return lines


def _detect_delimiter(lines: list[str]) -> str:
    """Pick the delimiter that splits the header and the data lines alike."""
    if not lines:
        return DELIMITERS[0]
    header, data = lines[0], lines[1:]
    best, best_score = DELIMITERS[0], (-1, 0)
    for delimiter in DELIMITERS:
        count = _count_unquoted(header, delimiter)
        if count == 0:
            continue
        agreeing = sum(1 for line in data if _count_unquoted(line, delimiter) == count)
        if (agreeing, count) > best_score:
            best, best_score = delimiter, (agreeing, count)
    return best


def _count_unquoted(line: str, delimiter: str) -> int:
    count = 0
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def _records(
    source: BinaryIO, start: int, encoding: str, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) for every record, blank ones included."""
    source.seek(start)
    text = io.TextIOWrapper(source, encoding=encoding, newline="")
    row = 0
    try:
        for row, cells in enumerate(csv.reader(text, delimiter=delimiter), 1):
            yield row, cells
    except csv.Error as error:
        raise ImportFileError(
            f"the file cannot be read as CSV at row {row + 1}: {error}; "
            "check that every quoted value has its closing quote"
        ) from None
    finally:
        # Detach so that closing the wrapper later leaves the caller's stream open.
        text.detach()


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _check_quotes_closed(
    source: BinaryIO, start: int, encoding: str, delimiter: str
) -> None:
    """Raise ImportFileError if a quoted value runs to the end of the file.

    A lenient CSV reader would put every later row inside that value and so
    lose them without any error. The strict reader raises csv.Error on other
    malformed rows too, which the lenient reader accepts. Those rows are
    passed over here: only an error raised after the last line was read means
    that a quote was left open.
    """
    source.seek(start)
    text = io.TextIOWrapper(source, encoding=encoding, newline="")
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    row = 0
    try:
        while True:
            row += 1
            try:
                next(reader)
            except StopIteration:
                return
            except csv.Error:
                if lines.exhausted:
                    raise ImportFileError(
                        f"row {row} opens a quoted value that is never closed, so "
                        "the rest of the file would be read as part of it; add "
                        "the closing quote"
                    ) from None
    finally:
        text.detach()


class _Lines:
    """Iterate the lines of a text stream, noting when they run out."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self._text = text
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        yield from self._text
        self.exhausted = True


# --- the header --------------------------------------------------------------


def header_key(header: str) -> str:
    """Reduce a header to lower-case letters and digits: "Phone 1" -> "phone1"."""
    return "".join(char for char in header.casefold() if char.isalnum())


def resolve_columns(headers: list[str], phone_column: str | None) -> Columns:
    """Find the phone column and the other recognised columns by header name.

    Raises:
        ImportFileError: no phone column, or two columns share a name.
    """
    _check_unique(headers)
    keys = [header_key(header) for header in headers]
    phone = _phone_index(headers, keys, phone_column)
    used_columns = {phone}

    def find(candidates: tuple[str, ...]) -> int | None:
        index = _find(keys, candidates, used_columns)
        if index is not None:
            used_columns.add(index)
        return index

    columns = Columns(
        headers=tuple(headers),
        phone=phone,
        name=find(NAME_HEADERS),
        first_name=find(FIRST_NAME_HEADERS),
        last_name=find(LAST_NAME_HEADERS),
        timezone=find(TIMEZONE_HEADERS),
        state=find(STATE_HEADERS),
        consent=find(CONSENT_HEADERS),
        consent_source=find(CONSENT_SOURCE_HEADERS),
        consent_at=find(CONSENT_AT_HEADERS),
    )
    # First and last names stay variables too, because agents greet people by
    # their first name.
    field_columns = used_columns - {columns.first_name, columns.last_name}
    variables = tuple(
        (index, header or f"column {index + 1}")
        for index, header in enumerate(headers)
        if index not in field_columns
    )
    return replace(columns, variables=variables)


def _check_unique(headers: list[str]) -> None:
    first_seen: dict[str, int] = {}
    for index, header in enumerate(headers):
        if not header:
            continue
        if header in first_seen:
            raise ImportFileError(
                f"column {header!r} appears twice (columns {first_seen[header] + 1} "
                f"and {index + 1}); rename one of them"
            )
        first_seen[header] = index


def _phone_index(headers: list[str], keys: list[str], requested: str | None) -> int:
    if requested is not None:
        if requested.strip() in headers:
            return headers.index(requested.strip())
        index = _find(keys, (header_key(requested),), set())
        if index is None:
            raise ImportFileError(
                f"phone column {requested!r} not found; the file has columns: "
                f"{_listing(headers)}"
            )
        return index
    index = _find(keys, PHONE_HEADERS, set())
    if index is None:
        raise ImportFileError(
            f"no phone number column found; the file has columns: "
            f"{_listing(headers)}. Name the column 'phone' or give its header "
            "as phone_column (--phone-column in `outbound run`)"
        )
    return index


def _find(keys: list[str], candidates: tuple[str, ...], taken: set[int]) -> int | None:
    for candidate in candidates:
        for index, key in enumerate(keys):
            if key == candidate and index not in taken:
                return index
    return None


def _listing(headers: list[str]) -> str:
    return ", ".join(repr(header) for header in headers)


# --- one row -------------------------------------------------------------------


class _RowError(ValueError):
    """Raised inside RowReader for a cell that rejects the whole row."""

    def __init__(self, reason: str, value: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


class RowReader:
    """Convert the cells of one data row into a `ParsedContact` or a `RejectedRow`."""

    def __init__(
        self,
        columns: Columns,
        *,
        region: str,
        delimiter: str,
        consent_basis: str | None,
        consent_source: str | None,
    ) -> None:
        self._columns = columns
        self._region = region
        self._delimiter = delimiter
        self._consent_basis = consent_basis
        self._consent_source = consent_source
        # The consent time of rows without a consent_at value.
        self._now = datetime.now(UTC)

    def read(self, row: int, cells: list[str]) -> ParsedContact | RejectedRow | None:
        """Read one record, returning None for a blank one."""
        values = [cell.strip() for cell in cells]
        if not any(values):
            return None
        try:
            return self._contact(row, self._fit(values, cells))
        except _RowError as error:
            value = error.value[:MAX_REJECTED_VALUE_CHARS]
            return RejectedRow(row=row, reason=error.reason, value=value)

    def _fit(self, values: list[str], cells: list[str]) -> list[str]:
        width = len(self._columns.headers)
        if any(values[width:]):
            raise _RowError(
                f"the row has {len(values)} values but the header has {width} "
                "columns; quote values that contain the delimiter",
                self._delimiter.join(cells),
            )
        # Some tools leave out empty cells at the end of a row.
        return values[:width] + [""] * (width - len(values))

    def _contact(self, row: int, values: list[str]) -> ParsedContact:
        columns = self._columns
        raw_phone = values[columns.phone]
        try:
            phone = normalize_phone(raw_phone, self._region)
        except InvalidPhone as error:
            raise _RowError(error.reason, raw_phone) from None
        variables = {name: values[i] for i, name in columns.variables if values[i]}
        return ParsedContact(
            row=row,
            phone=phone,
            name=self._name(values),
            timezone=_timezone(_cell(values, columns.timezone)),
            state=_state(_cell(values, columns.state), self._region),
            consent=self._consent(values),
            variables=variables,
        )

    def _name(self, values: list[str]) -> str | None:
        columns = self._columns
        name = _cell(values, columns.name)
        if name:
            return name
        first = _cell(values, columns.first_name)
        last = _cell(values, columns.last_name)
        return " ".join(part for part in (first, last) if part) or None

    def _consent(self, values: list[str]) -> Consent | None:
        columns = self._columns
        cell = _cell(values, columns.consent)
        basis = _consent_basis(cell) if cell else self._consent_basis
        if basis is None:
            # NOTE: consent_source and consent_at are ignored on a row without a
            # basis, because without one the contact has no consent at all.
            return None
        source = _cell(values, columns.consent_source) or self._consent_source
        at = _consent_at(_cell(values, columns.consent_at)) or self._now
        return Consent(basis=basis, source=source, at=at)


def _cell(values: list[str], index: int | None) -> str:
    return "" if index is None else values[index]


def _consent_basis(cell: str) -> str:
    basis = cell.casefold().replace(" ", "_").replace("-", "_")
    if basis not in CONSENT_BASES:
        raise _RowError(
            f"unknown consent basis; use one of {', '.join(CONSENT_BASES)}", cell
        )
    return basis


def _consent_at(cell: str) -> datetime | None:
    if not cell:
        return None
    try:
        when = datetime.fromisoformat(cell)
    except ValueError:
        raise _RowError(
            "invalid consent date; use ISO 8601, such as 2024-05-01 or "
            "2024-05-01T14:30:00Z",
            cell,
        ) from None
    # NOTE: a date or time without an offset is taken as UTC.
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _timezone(cell: str) -> str | None:
    if not cell:
        return None
    zone = _zones_by_key().get(cell.casefold())
    if zone is None:
        raise _RowError(
            "unknown time zone; use an IANA name such as America/New_York", cell
        )
    return zone


@cache
def _zones_by_key() -> dict[str, str]:
    """Map IANA zone names, case-folded, to their spelling in the tz database.

    Bare abbreviations such as "EST" and "MST" are left out: the tz database
    defines them as fixed offsets without daylight saving time, so a contact in
    New York marked "EST" would be an hour off all summer.
    """
    zones = zoneinfo.available_timezones()
    return {zone.casefold(): zone for zone in zones if "/" in zone or zone == "UTC"}


def _state(cell: str, region: str) -> str | None:
    if not cell:
        return None
    if region == "US":
        code = _us_states().get(cell.casefold())
        if code is None:
            raise _RowError(
                "unknown US state; use a two-letter code such as FL or a name "
                "such as Florida",
                cell,
            )
        return code
    if len(cell) != 2 or not cell.isalpha():
        raise _RowError("invalid state; use a two-letter code", cell)
    return cell.upper()


@cache
def _us_states() -> dict[str, str]:
    """Map state codes and names, case-folded, to two-letter USPS codes."""
    states = {code.casefold(): code for code in UnitedStates.subdivisions}
    for name, code in UnitedStates.subdivisions_aliases.items():
        states[name.casefold()] = code
    return states


# --- merging rows for the same number ---------------------------------------


class SeenNumbers:
    """The numbers seen so far and which of their values are already given.

    Memory grows with the number of distinct numbers in the file: one entry
    each, with the set of given fields shared between entries.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[int, frozenset[str]]] = {}
        self._shared: dict[frozenset[str], frozenset[str]] = {}

    def merge(self, contact: ParsedContact) -> ParsedContact | DuplicateRow:
        key = (contact.phone.e164, contact.phone.extension)
        given_fields = _given(contact)
        earlier = self._seen.get(key)
        if earlier is None:
            self._seen[key] = (contact.row, self._share(given_fields))
            return contact
        first_row, known = earlier
        self._seen[key] = (first_row, self._share(known | given_fields))
        return DuplicateRow(
            row=contact.row, duplicate_of=first_row, fill=_without(contact, known)
        )

    def _share(self, fields: frozenset[str]) -> frozenset[str]:
        return self._shared.setdefault(fields, fields)


_FIELDS = ("name", "timezone", "state", "consent")


def _given(contact: ParsedContact) -> frozenset[str]:
    fields = [name for name in _FIELDS if getattr(contact, name) is not None]
    return frozenset(fields + [f"variable:{key}" for key in contact.variables])


def _without(contact: ParsedContact, known: frozenset[str]) -> ParsedContact:
    """Keep only the values of `contact` that are not in `known`."""
    kept = {name: None if name in known else getattr(contact, name) for name in _FIELDS}
    variables = {
        key: value
        for key, value in contact.variables.items()
        if f"variable:{key}" not in known
    }
    return ParsedContact(
        row=contact.row, phone=contact.phone, variables=variables, **kept
    )
