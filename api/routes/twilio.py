"""Twilio's status callbacks: verified, stored once, only ever moving forward."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from temporalio.service import RPCError
from twilio.request_validator import RequestValidator

from activities.types import CallFinished
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ApiError
from store.attempts import StatusReport, apply_status, find_attempt, record_event
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
    attempt: Annotated[int | None, Query()] = None,
) -> Response:
    """Record a call status callback and tell the contact's workflow when final."""
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    _verify(settings.public_base_url, settings.twilio_auth_token, request, params, signature)
    report = _report(params)
    with db.session() as session:
        row = find_attempt(session, report.provider_sid, attempt)
        attempt_id = row.id if row else None
        fresh = record_event(session, report, attempt_id, params)
        final = False
        if row is not None and fresh:
            final = apply_status(session, row, report)
        session.commit()
        target = (row.campaign_id, row.contact_id) if row is not None else None
    if row is None:
        logger.warning("Callback for unknown call %s", report.provider_sid)
    if final and target is not None:
        await _notify(temporal, target, CallFinished(attempt_id=attempt_id, status=report.status))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _verify(
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
        raise ApiError(status.HTTP_403_FORBIDDEN, "invalid_signature", "missing X-Twilio-Signature")
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


async def _notify(temporal, target: tuple[int, int], signal: CallFinished) -> None:  # noqa: ANN001
    workflow_id = names.contact_workflow_id(*target)
    try:
        await temporal.get_workflow_handle(workflow_id).signal("call_finished", signal)
    except RPCError as error:
        # The workflow also asks the provider after a timeout, so a lost
        # signal delays this contact but loses nothing.
        logger.warning("Could not signal %s: %s", workflow_id, error)
