"""Twilio's status callbacks: verified, stored once, only ever moving forward."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError
from twilio.request_validator import RequestValidator

from activities.types import CallFinished
from api.deps import AttemptQuery, DbDep, SettingsDep, TemporalDep
from api.errors import ApiError
from store.attempts import StatusReport, apply_status, find_attempt, record_event
from store.db import Database
from workflows import names

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: Annotated[str | None, Header(alias="X-Twilio-Signature")] = None,
    attempt: AttemptQuery = None,
) -> Response:
    """Record a call status callback and tell the contact's workflow when final."""
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    verify_signature(
        settings.public_base_url, settings.twilio_auth_token, request, params, signature
    )
    report = _report(params)
    # The database work runs in the thread pool: waiting for SQLite's lock on
    # the event loop would stall the requests that hold it.
    applied = await run_in_threadpool(_record, db, report, attempt, params)
    if applied is None:
        logger.warning("Callback for unknown call %s", report.provider_sid)
    elif applied.became_final:
        await _notify(temporal, applied, settings.workflow_id_prefix)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@dataclass(frozen=True)
class _Applied:
    attempt_id: int
    campaign_id: int
    contact_id: int
    status: str
    became_final: bool


def _record(
    db: Database, report: StatusReport, attempt_id: int | None, params: dict[str, str]
) -> _Applied | None:
    """Store the callback once and move the attempt forward."""
    with db.session() as session:
        row = find_attempt(session, report.provider_sid, attempt_id)
        fresh = record_event(session, report, row.id if row else None, params)
        final = False
        if row is not None and fresh:
            final = apply_status(session, row, report)
        session.commit()
    if row is None:
        return None
    return _Applied(row.id, row.campaign_id, row.contact_id, row.status, final)


def verify_signature(
    public_base_url: str,
    auth_token: str | None,
    request: Request,
    params: dict[str, str],
    signature: str | None,
) -> None:
    # The signature covers the URL Twilio called, which behind a proxy is the
    # public one from configuration, not this request's own host.
    url = public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not auth_token or not signature:
        raise ApiError(
            status.HTTP_403_FORBIDDEN, "invalid_signature", "missing X-Twilio-Signature"
        )
    if not RequestValidator(auth_token).validate(url, params, signature):
        raise ApiError(
            status.HTTP_403_FORBIDDEN,
            "invalid_signature",
            "X-Twilio-Signature does not match this request",
        )


def _report(params: dict[str, str]) -> StatusReport:
    sid = params.get("CallSid")
    call_status = params.get("CallStatus")
    if not sid or not call_status:
        raise ApiError(
            status.HTTP_400_BAD_REQUEST,
            "invalid_callback",
            "callback lacks CallSid or CallStatus",
        )
    duration = params.get("CallDuration") or params.get("Duration")
    return StatusReport(
        provider_sid=sid,
        status=call_status,
        sequence_number=_int(params.get("SequenceNumber"), -1),
        answered_by=params.get("AnsweredBy") or None,
        duration_seconds=_int(duration, None),
        error_code=params.get("ErrorCode") or None,
    )


def _int(value: str | None, default: int | None) -> int | None:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


async def _notify(temporal: Client, applied: _Applied, prefix: str) -> None:
    campaign_workflow = names.campaign_workflow_id(applied.campaign_id, prefix)
    workflow_id = names.contact_workflow_id(campaign_workflow, applied.contact_id)
    signal = CallFinished(attempt_id=applied.attempt_id, status=applied.status)
    try:
        await temporal.get_workflow_handle(workflow_id).signal("call_finished", signal)
    except RPCError as error:
        # The workflow also asks the provider after a timeout, so a lost
        # signal delays this contact but loses nothing.
        logger.warning("Could not signal %s: %s", workflow_id, error)
