import io
from datetime import UTC, datetime

import phonenumbers
import pytest
from sqlmodel import select

from contacts.csv_import import ImportFileError, RejectedRow
from contacts.store import ImportReport, import_contacts
from store.db import Database
from store.imports import ContactImport, ImportContact
from store.models import Contact, DoNotCall


def run_import(db: Database, text: str | bytes, **options: str) -> ImportReport:
    data = text.encode() if isinstance(text, str) else text
    return import_contacts(db, io.BytesIO(data), filename="contacts.csv", **options)


def all_contacts(db: Database) -> list[Contact]:
    with db.session() as session:
        return list(session.exec(select(Contact).order_by(Contact.phone)))


def stored_phones(db: Database) -> list[tuple[str, str]]:
    return [(contact.phone, contact.extension) for contact in all_contacts(db)]


def one_contact(db: Database) -> Contact:
    (contact,) = all_contacts(db)
    return contact


def import_records(db: Database) -> list[ContactImport]:
    with db.session() as session:
        return list(session.exec(select(ContactImport)))


def as_utc(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone-aware columns.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def fictional_numbers(count: int) -> list[str]:
    """Distinct valid US numbers in the 555-0100 to 555-0199 range."""
    area_codes = [
        code
        for code in range(200, 1000)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{code}5550100"))
    ]
    numbers = [
        f"({code}) 555-01{line:02d}" for code in area_codes for line in range(100)
    ]
    assert len(numbers) >= count, "not enough fictional numbers"
    return numbers[:count]


# --- the formats of real exports ------------------------------------------------


def test_import_utf8_byte_order_mark(db: Database) -> None:
    run_import(db, b"\xef\xbb\xbfphone,first_name\n+12025550112,Ana\n")

    assert stored_phones(db) == [("+12025550112", "")]


def test_import_semicolon_file(db: Database) -> None:
    run_import(db, "phone;first_name\n(202) 555-0113;Ben\n+1 202 555 0114;Cleo\n")

    assert stored_phones(db) == [("+12025550113", ""), ("+12025550114", "")]


def test_import_scientific_notation_rejected(db: Database) -> None:
    report = run_import(db, 'phone,name\n1.20256E+10,Dee\n"12025550115",Eli\n')

    assert [item.row for item in report.rejected] == [2]
    assert "scientific notation" in report.rejected[0].reason


def test_import_scientific_notation_keeps_good_row(db: Database) -> None:
    run_import(db, 'phone,name\n1.20256E+10,Dee\n"12025550115",Eli\n')

    assert [contact.name for contact in all_contacts(db)] == ["Eli"]


def test_import_extensions_merge(db: Database) -> None:
    text = (
        'phone\n"(202) 555-0118 x12"\n"202-555-0118 ext. 12"\n"+12025550118;ext=12"\n'
    )

    report = run_import(db, text)

    assert stored_phones(db) == [("+12025550118", "12")]
    assert report.duplicates == [(3, 2), (4, 2)]


def test_import_duplicates_are_not_rejected(db: Database) -> None:
    report = run_import(db, "phone\n2025550118\n+12025550118\n")

    assert report.rejected == []


def test_import_international_prefix(db: Database) -> None:
    run_import(db, "phone\n011 1 202 555 0119\n")

    assert stored_phones(db) == [("+12025550119", "")]


def test_import_tab_file_with_mobile_header(db: Database) -> None:
    run_import(db, "Name\tMobile\nFay\t(202) 555-0120\n")

    assert stored_phones(db) == [("+12025550120", "")]


def test_import_phone_1_header(db: Database) -> None:
    run_import(db, "Name,Phone 1,Phone 2\nGus,202-555-0121,202-555-0122\n")

    assert one_contact(db).variables == {"Phone 2": "202-555-0122"}


def test_import_bad_row_between_good_ones(db: Database) -> None:
    report = run_import(db, "phone\n2025550123\n12345\n2025550124\n")

    assert stored_phones(db) == [("+12025550123", ""), ("+12025550124", "")]
    assert report.rejected == [RejectedRow(row=3, reason="too short", value="12345")]


# --- file-level errors ------------------------------------------------------------


def test_import_no_phone_column_lists_columns(db: Database) -> None:
    with pytest.raises(ImportFileError) as caught:
        run_import(db, "first_name,notes\nIvy,x\n")

    assert "the file has columns: 'first_name', 'notes'" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        b"first_name,notes\nIvy,x\n",
        b"",
        b"phone\n2025550125\n2025550126,Jos\xe9\n",
        b'phone,name\n2025550125,"Ann\n2025550126,Bo\n',
    ],
    ids=["no phone column", "empty", "not utf-8", "unclosed quote"],
)
def test_import_file_error_stores_nothing(db: Database, data: bytes) -> None:
    with pytest.raises(ImportFileError):
        run_import(db, data)

    assert all_contacts(db) == []
    assert import_records(db) == []


# --- re-import and the do-not-call list -----------------------------------------


def test_import_again_updates_contact(db: Database) -> None:
    run_import(db, "phone,name,plan\n2025550127,Hal,gold\n")

    report = run_import(db, "phone,name,plan\n+1 202 555 0127,Hal Ito,silver\n")

    contact = one_contact(db)
    assert report.created == 0
    assert report.updated == 1
    assert contact.name == "Hal Ito"
    assert contact.variables == {"plan": "silver"}


def test_import_again_merges_variables(db: Database) -> None:
    run_import(db, "phone,plan,city\n2025550127,gold,Reno\n")

    run_import(db, "phone,plan,team\n2025550127,silver,blue\n")

    assert one_contact(db).variables == {
        "plan": "silver",
        "city": "Reno",
        "team": "blue",
    }


def test_import_again_empty_cells_keep_values(db: Database) -> None:
    run_import(db, "phone,name,tz,state\n2025550127,Hal,America/Denver,CO\n")

    run_import(db, "phone,name,tz,state\n2025550127,,,\n")

    contact = one_contact(db)
    assert contact.name == "Hal"
    assert contact.timezone == "America/Denver"
    assert contact.state == "CO"


def test_import_again_keeps_do_not_call_entry(db: Database) -> None:
    run_import(db, "phone\n2025550128\n")
    with db.session() as session:
        session.add(DoNotCall(phone="+12025550128", source="api"))
        session.commit()

    run_import(db, "phone,consent\n2025550128,express_written\n")

    with db.session() as session:
        entries = session.exec(select(DoNotCall.phone)).all()
    assert entries == ["+12025550128"]


def test_import_do_not_call_number_stored(db: Database) -> None:
    with db.session() as session:
        session.add(DoNotCall(phone="+12025550128", source="api"))
        session.commit()

    run_import(db, "phone\n2025550128\n")

    assert stored_phones(db) == [("+12025550128", "")]


def test_import_same_number_other_extension_is_new(db: Database) -> None:
    run_import(db, "phone\n2025550129\n")

    report = run_import(db, "phone\n2025550129 x7\n")

    assert report.created == 1


# --- consent --------------------------------------------------------------------


def test_import_consent_per_row(db: Database) -> None:
    run_import(
        db,
        "phone,consent,consent_source,consent_at\n"
        "2025550130,express_written,signup form,2024-03-01T09:00:00Z\n"
        "2025550131,,,\n",
    )

    first, second = all_contacts(db)
    assert first.consent_basis == "express_written"
    assert first.consent_source == "signup form"
    assert as_utc(first.consent_at) == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert second.consent_basis is None


def test_import_consent_for_whole_file(db: Database) -> None:
    before = datetime.now(UTC)

    run_import(
        db,
        "phone\n2025550132\n",
        consent_basis="existing_customer",
        consent_source="billing system",
    )

    contact = one_contact(db)
    assert contact.consent_basis == "existing_customer"
    assert contact.consent_source == "billing system"
    consent_at = as_utc(contact.consent_at)
    assert consent_at is not None
    assert consent_at >= before


def test_import_row_consent_wins_over_file_consent(db: Database) -> None:
    run_import(db, "phone,consent\n2025550133,inquiry\n", consent_basis="express")

    assert one_contact(db).consent_basis == "inquiry"


def test_import_invalid_consent_row_rejected(db: Database) -> None:
    report = run_import(db, "phone,consent\n2025550134,maybe\n2025550135,express\n")

    assert [(item.row, item.value) for item in report.rejected] == [(2, "maybe")]


def test_import_without_consent_keeps_stored_consent(db: Database) -> None:
    run_import(db, "phone,consent,consent_source\n2025550136,express,web\n")

    run_import(db, "phone,name\n2025550136,Ida\n")

    contact = one_contact(db)
    assert contact.consent_basis == "express"
    assert contact.consent_source == "web"


def test_import_new_consent_replaces_source(db: Database) -> None:
    run_import(db, "phone,consent,consent_source\n2025550136,express,web\n")

    run_import(db, "phone,consent\n2025550136,inquiry\n")

    contact = one_contact(db)
    assert contact.consent_basis == "inquiry"
    assert contact.consent_source is None


# --- merging duplicates -------------------------------------------------------------


def test_import_duplicate_fills_gaps(db: Database) -> None:
    run_import(
        db,
        "phone,name,plan,city\n2025550137,Jo,gold,\n2025550137,Jay,silver,Reno\n",
    )

    contact = one_contact(db)
    assert contact.name == "Jo"
    assert contact.variables == {"plan": "gold", "city": "Reno"}


def test_import_duplicate_fill_overrides_older_import(db: Database) -> None:
    run_import(db, "phone,city\n2025550138,Elko\n")

    run_import(db, "phone,city\n2025550138,\n2025550138,Reno\n")

    assert one_contact(db).variables == {"city": "Reno"}


def test_import_duplicate_across_batches(db: Database) -> None:
    filler = "\n".join(f"{number},x" for number in fictional_numbers(1_200)[1:])
    text = f"phone,plan,city\n2025550139,gold,\n{filler}\n2025550139,,Reno\n"

    run_import(db, text)

    with db.session() as session:
        contact = session.exec(select(Contact).where(Contact.phone == "+12025550139"))
        assert contact.one().variables == {"plan": "gold", "city": "Reno"}


# --- the import record ------------------------------------------------------------


def test_import_report_counts(db: Database) -> None:
    run_import(db, "phone\n2025550140\n")

    report = run_import(db, "phone\n2025550140\n2025550141\n\n2025550141\nbad\n")

    assert report.rows == 4
    assert report.created == 1
    assert report.updated == 1
    assert report.contacts == 2


def test_import_record_stored(db: Database) -> None:
    report = run_import(db, "phone\n2025550142\nbad\n2025550142\n")

    with db.session() as session:
        record = session.get_one(ContactImport, report.import_id)
    assert record.filename == "contacts.csv"
    assert record.rows_total == 3
    assert record.duplicates == 1
    assert record.rejected_rows == [
        {"row": 3, "reason": "not a phone number", "value": "bad"}
    ]
    assert record.finished_at is not None


def test_import_links_every_contact(db: Database) -> None:
    run_import(db, "phone\n2025550143\n")

    report = run_import(db, "phone\n2025550143\n2025550144\n2025550144\n")

    with db.session() as session:
        query = select(ImportContact.contact_id).where(
            ImportContact.import_id == report.import_id
        )
        linked = sorted(session.exec(query).all())
    contact_ids = [contact.id for contact in all_contacts(db) if contact.id]
    assert linked == sorted(contact_ids)


def test_import_report_names_phone_column(db: Database) -> None:
    report = run_import(db, "Name,Cell\nKim,2025550145\n")

    assert report.phone_column == "Cell"


def test_import_large_generated_file(db: Database) -> None:
    numbers = fictional_numbers(20_000)
    rows = "".join(
        f"{number},Person {i},plan {i % 3}\n" for i, number in enumerate(numbers)
    )

    report = run_import(db, "phone,name,plan\n" + rows)

    assert report.rows == 20_000
    assert report.created == 20_000
    assert report.rejected == []
    assert len(all_contacts(db)) == 20_000
