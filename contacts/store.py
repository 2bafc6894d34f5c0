"""Import a contact CSV file into the database, in batches of upserts.

Re-importing a number updates its contact: values given by the file replace
the stored ones, and empty cells leave them alone. The do-not-call table is
never read or written here, so an import cannot take a number off that list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, BinaryIO

from sqlalchemy import JSON, Connection, case, cast, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Insert

from contacts.csv_import import (
    DuplicateRow,
    ParsedContact,
    ParsedRow,
    RejectedRow,
    parse_contacts,
)
from store.db import Database
from store.imports import ContactImport, ImportContact
from store.models import Contact

logger = logging.getLogger(__name__)

# Rows per transaction: large enough that the per-statement cost is small,
# small enough that each transaction holds the SQLite write lock only briefly.
# TODO(contacts): on PostgreSQL an import takes about twice as long as on
# SQLite, because psycopg parses each multi-row INSERT afresh (it caches only
# statements under 50 parameters). An INSERT ... SELECT FROM unnest(arrays)
# would send one small statement per batch.
BATCH_ROWS = 1_000

CONTACT = Contact.__table__  # type: ignore[attr-defined]
IMPORT_CONTACT = ImportContact.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ImportReport:
    """The outcome of an import: counts, duplicates and rejected rows.

    Attributes:
        import_id: the ContactImport row that records this import.
        rows: non-blank data rows in the file.
        created: contacts that did not exist before.
        updated: contacts that existed and were updated.
        duplicates: (row, row it duplicates) for every later row of a number.
        rejected: the rows that were not imported, with the reason.
        contacts: distinct contacts in the file, each linked to the import.
        phone_column: the header of the column read as the phone number.
    """

    import_id: int
    rows: int
    created: int
    updated: int
    duplicates: list[tuple[int, int]]
    rejected: list[RejectedRow]
    contacts: int
    phone_column: str


@dataclass
class _Tally:
    rows: int = 0
    created: int = 0
    updated: int = 0
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def import_contacts(
    db: Database,
    stream: BinaryIO,
    *,
    filename: str,
    region: str = "US",
    phone_column: str | None = None,
    consent_basis: str | None = None,
    consent_source: str | None = None,
) -> ImportReport:
    """Import a contact CSV file and record the import.

    Each batch of rows is committed on its own. If the database fails part way,
    the batches before stay imported and the ContactImport row keeps a NULL
    `finished_at`.

    Raises:
        ImportFileError: the file cannot be imported as a whole (empty, not
            UTF-8, no phone column...). Nothing is stored then.
        ValueError: `region` or `consent_basis` is not a known value.
    """
    with parse_contacts(
        stream,
        region=region,
        phone_column=phone_column,
        consent_basis=consent_basis,
        consent_source=consent_source,
    ) as parse:
        import_id = _start_import(db, filename)
        tally = _Tally()
        upsert = _upsert_statement(db.engine.dialect.name)
        for batch in _batches(parse, BATCH_ROWS):
            with db.engine.begin() as connection:
                _store_batch(connection, upsert, import_id, batch, tally)
        phone_header = parse.phone_column
    _finish_import(db, import_id, tally)
    logger.info(
        "contact import %s finished: %s rows, %s created, %s updated, "
        "%s duplicates, %s rejected",
        import_id,
        tally.rows,
        tally.created,
        tally.updated,
        len(tally.duplicates),
        len(tally.rejected),
    )
    return ImportReport(
        import_id=import_id,
        rows=tally.rows,
        created=tally.created,
        updated=tally.updated,
        duplicates=tally.duplicates,
        rejected=tally.rejected,
        contacts=tally.created + tally.updated,
        phone_column=phone_header,
    )


def _batches(rows: Iterable[ParsedRow], size: int) -> Iterator[list[ParsedRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _start_import(db: Database, filename: str) -> int:
    with db.session() as session:
        record = ContactImport(filename=filename)
        session.add(record)
        session.commit()
        assert record.id is not None
        return record.id


def _finish_import(db: Database, import_id: int, tally: _Tally) -> None:
    with db.session() as session:
        record = session.get_one(ContactImport, import_id)
        record.finished_at = datetime.now(UTC)
        record.rows_total = tally.rows
        record.contacts_created = tally.created
        record.contacts_updated = tally.updated
        record.duplicates = len(tally.duplicates)
        record.rejected = len(tally.rejected)
        record.rejected_rows = [
            {"row": item.row, "reason": item.reason, "value": item.value}
            for item in tally.rejected
        ]
        session.commit()


def _store_batch(
    connection: Connection,
    upsert: Insert,
    import_id: int,
    batch: list[ParsedRow],
    tally: _Tally,
) -> None:
    now = datetime.now(UTC)
    contacts = [item for item in batch if isinstance(item, ParsedContact)]
    duplicates = [item for item in batch if isinstance(item, DuplicateRow)]
    tally.rows += len(batch)
    tally.rejected.extend(item for item in batch if isinstance(item, RejectedRow))
    tally.duplicates.extend((item.row, item.duplicate_of) for item in duplicates)
    if contacts:
        rows = [_contact_values(contact, now) for contact in contacts]
        stored = connection.execute(upsert, rows).all()
        links = [{"import_id": import_id, "contact_id": row.id} for row in stored]
        connection.execute(IMPORT_CONTACT.insert(), links)
        created = sum(1 for row in stored if row.inserted)
        tally.created += created
        tally.updated += len(stored) - created
    # Runs after the upsert above because a duplicate may name a contact
    # first seen in this same batch.
    fills = _merge_fills(duplicates, now)
    if fills:
        connection.execute(upsert, fills)


def _key(contact: ParsedContact) -> tuple[str, str]:
    return contact.phone.e164, contact.phone.extension


def _contact_values(contact: ParsedContact, now: datetime) -> dict[str, Any]:
    consent = contact.consent
    return {
        "phone": contact.phone.e164,
        "extension": contact.phone.extension,
        "name": contact.name,
        "variables": dict(contact.variables),
        "timezone": contact.timezone,
        "state": contact.state,
        "consent_basis": consent.basis if consent else None,
        "consent_source": consent.source if consent else None,
        "consent_at": consent.at if consent else None,
        "created_at": now,
        "updated_at": now,
    }


def _merge_fills(duplicates: list[DuplicateRow], now: datetime) -> list[dict[str, Any]]:
    """Combine the fills of one batch into one upsert row per contact.

    The parser gives each fill only values that no earlier row gave, so the
    fills for one number never overlap and their order does not matter.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for duplicate in duplicates:
        values = _contact_values(duplicate.fill, now)
        key = _key(duplicate.fill)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = values
            continue
        for name, value in values.items():
            if name == "variables":
                earlier[name] = {**earlier[name], **value}
            elif earlier[name] is None:
                earlier[name] = value
    return [values for values in merged.values() if _fills_something(values)]


def _fills_something(values: dict[str, Any]) -> bool:
    fields = ("name", "timezone", "state", "consent_basis", "variables")
    return any(values[name] for name in fields)


def _upsert_statement(dialect: str) -> Insert:
    """Build INSERT ... ON CONFLICT (phone, extension) DO UPDATE for `dialect`.

    On conflict, a NULL in the new row keeps the stored value, variables are
    merged key by key with the new values winning, and the consent source and
    time change only together with a new consent basis.
    """
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(CONTACT)
    elif dialect == "sqlite":
        statement = sqlite.insert(CONTACT)
    else:
        raise ValueError(
            f"contact import supports sqlite and postgresql, not {dialect}"
        )
    new = statement.excluded
    old = CONTACT.c
    consent_given = new.consent_basis.is_not(None)
    return statement.on_conflict_do_update(
        index_elements=[old.phone, old.extension],
        set_={
            "name": func.coalesce(new.name, old.name),
            "timezone": func.coalesce(new.timezone, old.timezone),
            "state": func.coalesce(new.state, old.state),
            "consent_basis": func.coalesce(new.consent_basis, old.consent_basis),
            "consent_source": case(
                (consent_given, new.consent_source), else_=old.consent_source
            ),
            "consent_at": case((consent_given, new.consent_at), else_=old.consent_at),
            "variables": _merged_variables(dialect, old.variables, new.variables),
            "updated_at": new.updated_at,
        },
    ).returning(
        old.id,
        # An insert writes the same `now` to both columns, while an update
        # changes only updated_at, so equal values mean the row is new.
        (old.created_at == old.updated_at).label("inserted"),
    )


def _merged_variables(
    dialect: str, old: ColumnElement[Any], new: ColumnElement[Any]
) -> ColumnElement[Any]:
    if dialect == "sqlite":
        # json_patch (RFC 7396) replaces a stored value that is not an object.
        base = func.coalesce(old, literal_column("'{}'"))
        return func.json_patch(base, new, type_=JSON)
    stored = cast(old, JSONB)
    object_or_empty = case(
        (func.jsonb_typeof(stored) == "object", stored),
        else_=literal_column("'{}'::jsonb"),
    )
    return cast(object_or_empty.op("||")(cast(new, JSONB)), JSON)
