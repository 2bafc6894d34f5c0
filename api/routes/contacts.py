"""Contacts: import from CSV, list, and get one with every attempt."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from sqlmodel import select

from api.deps import ApiKey, DbDep, IdPath, SessionDep, SettingsDep
from api.errors import ApiError, not_found
from api.routes.inbox import call_result
from api.schemas import AttemptOut, ContactOut, ContactPage, ImportOut, RejectedRowOut
from contacts.csv_import import ImportFileError
from contacts.store import import_contacts
from store.models import CallAttempt, Contact, DoNotCall
from store.reports import reports_for

router = APIRouter(prefix="/contacts", tags=["contacts"], dependencies=[ApiKey])


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_contacts_csv(
    db: DbDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV with a phone column")],
    phone_column: Annotated[str | None, Form()] = None,
    consent_basis: Annotated[str | None, Form()] = None,
    consent_source: Annotated[str | None, Form()] = None,
) -> ImportOut:
    """Import contacts from a CSV file; rejected rows are listed, good ones kept."""
    try:
        report = await asyncio.to_thread(
            import_contacts,
            db,
            file.file,
            filename=file.filename or "upload.csv",
            region=settings.default_region,
            phone_column=phone_column,
            consent_basis=consent_basis,
            consent_source=consent_source,
        )
    except ImportFileError as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_file", str(error)
        ) from error
    except ValueError as error:
        # A file-wide option that is not valid, such as an unknown consent basis.
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_import_option", str(error)
        ) from error
    return ImportOut(
        import_id=report.import_id,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        duplicates=[{"row": row, "duplicate_of": of} for row, of in report.duplicates],
        rejected=[
            RejectedRowOut(row=r.row, reason=r.reason, value=r.value)
            for r in report.rejected
        ],
    )


@router.get("")
def list_contacts(
    session: SessionDep,
    after: Annotated[int, Query(ge=0, description="Cursor: last id seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ContactPage:
    """List contacts by id, a page at a time."""
    rows = session.exec(
        select(Contact).where(Contact.id > after).order_by(Contact.id).limit(limit)
    ).all()
    items = [_contact_out(session, row, with_attempts=False) for row in rows]
    next_cursor = rows[-1].id if len(rows) == limit else None
    return ContactPage(items=items, next_cursor=next_cursor)


@router.get("/{contact_id}")
def get_contact(contact_id: IdPath, session: SessionDep) -> ContactOut:
    """Get a contact with every attempt made to it, oldest first."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise not_found("contact", contact_id)
    return _contact_out(session, contact, with_attempts=True)


def _contact_out(
    session: SessionDep, contact: Contact, *, with_attempts: bool
) -> ContactOut:
    attempts: list[AttemptOut] = []
    if with_attempts:
        rows = session.exec(
            select(CallAttempt)
            .where(CallAttempt.contact_id == contact.id)
            .order_by(CallAttempt.created_at, CallAttempt.id)
        ).all()
        reports = reports_for(session, [row.id for row in rows if row.id is not None])
        attempts = [
            AttemptOut.model_validate(row, from_attributes=True).model_copy(
                update={"result": call_result(reports.get(row.id))}
            )
            for row in rows
        ]
    return ContactOut(
        id=contact.id,
        phone=contact.phone,
        extension=contact.extension,
        name=contact.name,
        variables=contact.variables or {},
        timezone=contact.timezone,
        state=contact.state,
        consent_basis=contact.consent_basis,
        consent_source=contact.consent_source,
        consent_at=contact.consent_at,
        do_not_call=session.get(DoNotCall, contact.phone) is not None,
        attempts=attempts,
    )
