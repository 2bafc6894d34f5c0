"""The do-not-call list: one row per number, shared by every campaign."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from activities.types import MemberState
from contacts.phones import InvalidPhone, normalize_phone
from store.models import (
    Campaign,
    CampaignMember,
    CampaignStatus,
    Contact,
    DoNotCall,
    utcnow,
)

logger = logging.getLogger(__name__)

DNC_PHONE_HEADERS = ("phone", "number", "phone number", "mobile", "telephone")
# A list of numbers has no long fields, but a stray quote can make one.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class DncRejectedRow:
    row: int
    reason: str
    value: str


@dataclass(frozen=True)
class DncImport:
    added_phones: list[str]
    already_listed: int
    rejected: list[DncRejectedRow]

    @property
    def added(self) -> int:
        return len(self.added_phones)


def add_number(
    session: Session, phone: str, *, source: str, note: str | None = None
) -> bool:
    """Put an E.164 number on the list; return False if it was there already."""
    if session.get(DoNotCall, phone) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                DoNotCall(phone=phone, source=source, note=note, added_at=utcnow())
            )
    except IntegrityError:
        # Another request listed it at the same moment.
        return False
    logger.info("Number added to the do-not-call list from %s", source)
    return True


def remove_number(session: Session, phone: str) -> bool:
    result = session.exec(delete(DoNotCall).where(DoNotCall.phone == phone))  # type: ignore[call-overload]
    return bool(result.rowcount)


def is_listed(session: Session, phone: str) -> bool:
    return session.get(DoNotCall, phone) is not None


def waiting_members(session: Session, phone: str) -> list[tuple[int, int]]:
    """(campaign id, contact id) of every open member with this number.

    Their workflows are woken when the number is listed, so that the check
    before the next dial ends them at once instead of at their next attempt.
    """
    rows = session.exec(
        select(CampaignMember.campaign_id, CampaignMember.contact_id)
        .join(Contact, Contact.id == CampaignMember.contact_id)  # type: ignore[arg-type]
        .join(Campaign, Campaign.id == CampaignMember.campaign_id)  # type: ignore[arg-type]
        .where(
            Contact.phone == phone,
            CampaignMember.state.in_([MemberState.PENDING, MemberState.WAITING]),  # type: ignore[attr-defined]
            Campaign.status.in_([CampaignStatus.RUNNING, CampaignStatus.PAUSED]),  # type: ignore[attr-defined]
        )
    ).all()
    return [(campaign_id, contact_id) for campaign_id, contact_id in rows]


def import_numbers(
    session: Session, stream: BinaryIO, *, region: str, source: str
) -> DncImport:
    """Add every number of a CSV file (a phone column, or one bare column).

    A file whose structure is broken (an unclosed quote, two phone columns,
    text that is neither UTF-8 nor UTF-16 with a byte-order mark) is rejected
    whole, because a number silently
    dropped from this list would be called.

    Raises:
        ValueError: the file cannot be read as a do-not-call list.
    """
    rows = list(_read_rows(stream))
    if not rows:
        raise ValueError("the do-not-call file is empty")
    header = rows[0]
    keys = [cell.strip().lower().replace("_", " ") for cell in header]
    matches = [i for i, key in enumerate(keys) if key in DNC_PHONE_HEADERS]
    if len(matches) > 1:
        raise ValueError(
            "the do-not-call file has several phone columns ("
            + ", ".join(repr(header[i]) for i in matches)
            + "): keep one column of numbers per file"
        )
    column = matches[0] if matches else None
    return _add_rows(session, header, rows[1:], column, region=region, source=source)


UTF16_BYTE_ORDER_MARKS = (b"\xff\xfe", b"\xfe\xff")


def _read_rows(stream: BinaryIO) -> Iterator[list[str]]:
    start = stream.tell()
    head = stream.read(2)
    stream.seek(start)
    # Excel's "Unicode Text" export is UTF-16 with a byte-order mark. The
    # utf-8-sig codec reads UTF-8 with or without one.
    encoding = "utf-16" if head in UTF16_BYTE_ORDER_MARKS else "utf-8-sig"
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        sample = text.read(4096)
        text.seek(0)
        delimiter = max((",", ";", "\t"), key=sample.split("\n", 1)[0].count)
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        yield from reader
    except UnicodeDecodeError as error:
        raise ValueError(
            f"the do-not-call file is not valid {_name(encoding)} text "
            f"({error.reason}): export it as CSV UTF-8"
        ) from None
    except csv.Error as error:
        raise ValueError(
            f"the do-not-call file is not valid CSV at row {reader.line_num}: "
            f"{error}; check that every quoted value has its closing quote"
        ) from None


def _name(encoding: str) -> str:
    return "UTF-16" if encoding == "utf-16" else "UTF-8"


def _add_rows(
    session: Session,
    header: list[str],
    body: list[list[str]],
    column: int | None,
    *,
    region: str,
    source: str,
) -> DncImport:
    rows: list[tuple[int, str]] = []
    if column is None:
        if len(header) != 1:
            raise ValueError(
                "no phone column in the do-not-call file; columns found: "
                + ", ".join(repr(cell) for cell in header)
            )
        # A single column without a known header holds numbers from row 1.
        column = 0
        rows.append((1, header[0]))
    rows.extend(
        (number + 2, cells[column] if column < len(cells) else "")
        for number, cells in enumerate(body)
    )
    added: list[str] = []
    listed = 0
    rejected = []
    for row, value in rows:
        if not value.strip():
            continue
        try:
            phone = normalize_phone(value, region).e164
        except InvalidPhone as error:
            rejected.append(DncRejectedRow(row=row, reason=error.reason, value=value))
            continue
        if add_number(session, phone, source=source):
            added.append(phone)
        else:
            listed += 1
    return DncImport(added_phones=added, already_listed=listed, rejected=rejected)
