"""The do-not-call list: add, remove, list and import numbers."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import select
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import ApiKey, DbDep, SessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from contacts.phones import InvalidPhone, normalize_phone
from store.db import Database
from store.dnc import add_number, import_numbers, remove_number, waiting_members
from store.models import DoNotCall
from workflows import names

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/do-not-call", tags=["do-not-call"], dependencies=[ApiKey])


class DncAdd(BaseModel):
    phone: str = Field(description="The number, in any format the importer accepts.")
    note: str | None = Field(default=None, max_length=500)


class DncEntry(BaseModel):
    phone: str
    source: str
    note: str | None
    added_at: datetime


class DncAdded(BaseModel):
    phone: str
    added: bool
    contacts_stopped: int


class DncRemoved(BaseModel):
    phone: str
    removed: bool


class DncPage(BaseModel):
    items: list[DncEntry]
    next_cursor: str | None


class DncImportOut(BaseModel):
    added: int
    already_listed: int
    rejected: list[dict[str, object]]


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_to_list(
    body: DncAdd, db: DbDep, settings: SettingsDep, temporal: TemporalDep
) -> DncAdded:
    """Put a number on the list; waiting contacts with it end at once."""
    phone = _normalize(body.phone, settings.default_region)
    added, members = await run_in_threadpool(_add, db, phone, body.note)
    await wake_members(temporal, members, settings.workflow_id_prefix)
    return DncAdded(phone=phone, added=added, contacts_stopped=len(members))


@router.delete("/{phone}")
def remove_from_list(
    phone: str, session: SessionDep, settings: SettingsDep
) -> DncRemoved:
    """Take a number off the list."""
    normalized = _normalize(phone, settings.default_region)
    if not remove_number(session, normalized):
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            "not_found",
            f"{normalized} is not on the do-not-call list",
        )
    session.commit()
    return DncRemoved(phone=normalized, removed=True)


@router.get("")
def list_numbers(
    session: SessionDep,
    after: Annotated[str, Query(description="Cursor: the last number seen")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DncPage:
    """List the numbers on the list, a page at a time."""
    rows = session.exec(
        select(DoNotCall)
        .where(DoNotCall.phone > after)
        .order_by(DoNotCall.phone)
        .limit(limit)
    ).all()
    items = [DncEntry.model_validate(row, from_attributes=True) for row in rows]
    return DncPage(
        items=items, next_cursor=rows[-1].phone if len(rows) == limit else None
    )


@router.post("/import", status_code=status.HTTP_201_CREATED)
async def import_list(
    db: DbDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    file: Annotated[UploadFile, File(description="CSV with a phone column")],
) -> DncImportOut:
    """Add every number of a CSV file to the list."""
    try:
        result, members = await run_in_threadpool(
            _import, db, file, settings.default_region
        )
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_file", str(error)
        ) from error
    await wake_members(temporal, members, settings.workflow_id_prefix)
    return DncImportOut(
        added=result.added,
        already_listed=result.already_listed,
        rejected=[vars(row) for row in result.rejected],
    )


def _normalize(raw: str, region: str) -> str:
    try:
        return normalize_phone(raw, region).e164
    except InvalidPhone as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_phone", str(error)
        ) from error


def _add(
    db: Database, phone: str, note: str | None
) -> tuple[bool, list[tuple[int, int]]]:
    with db.session() as session:
        added = add_number(session, phone, source="api", note=note)
        session.commit()
        return added, waiting_members(session, phone)


def _import(db: Database, file: UploadFile, region: str):
    with db.session() as session:
        result = import_numbers(
            session, file.file, region=region, source=f"import of {file.filename}"
        )
        session.commit()
        members = [
            member
            for phone in result.added_phones
            for member in waiting_members(session, phone)
        ]
    return result, members


async def wake_members(
    temporal: Client, members: list[tuple[int, int]], prefix: str
) -> None:
    """Wake the workflows of these members so their next check runs now."""
    for campaign_id, contact_id in members:
        campaign_workflow = names.campaign_workflow_id(campaign_id, prefix)
        workflow_id = names.contact_workflow_id(campaign_workflow, contact_id)
        try:
            await temporal.get_workflow_handle(workflow_id).signal("wake")
        except RPCError as error:
            logger.debug("Could not wake %s: %s", workflow_id, error)
