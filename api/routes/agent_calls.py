"""The agent's side of a call: its context, its report, and the call's recording.

The agent authenticates with its own bearer token, issued when the agent is
created (POST /agents) and replaced by POST /agents/{id}/token. A token opens
only the calls of that agent's campaigns. The API key would open everything,
so a voice agent service holding its token can read no contact list and
start no campaign. Calls are named by Twilio's CallSid, which the agent gets
in Twilio's request, so no URL carries personal data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from activities.types import MemberState, Outcome
from api.deps import AttemptQuery, DbDep, ReadSessionDep, SettingsDep, TemporalDep
from api.errors import ApiError
from api.routes.dnc import wake_members
from api.routes.voice import SignatureHeader, verified_form
from api.schemas import CallContextOut, CallReportIn, CallReportOut
from store.attempts import find_attempt
from store.db import Database
from store.dnc import add_number, waiting_members
from store.models import Agent, CallAttempt, Campaign, CampaignMember, Contact, utcnow
from store.reports import (
    AgentReport,
    Recording,
    ReportConflict,
    agent_for_token,
    contact_variables,
    fill_purpose,
    route_of,
    save_recording,
    save_report,
)
from telephony.outcome import Route

logger = logging.getLogger(__name__)
router = APIRouter(tags=["agent calls"])

# An agent may still read the context this long after its call ended, since
# the final status callback can arrive before the agent has asked.
CONTEXT_AFTER_END = timedelta(minutes=5)
DO_NOT_CALL_REASON = "the contact asked not to be called again"

_bearer = HTTPBearer(auto_error=False, description="The agent's token.")


def require_agent(
    db: DbDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """Return the id of the agent whose bearer token came with the request."""
    agent_id = None
    if credentials is not None:
        with db.read_session() as session:
            agent_id = agent_for_token(session, credentials.credentials)
    if agent_id is None:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_agent_token",
            "missing or invalid agent token: send Authorization: Bearer <token> "
            "with the token from POST /agents or POST /agents/{id}/token",
        )
    return agent_id


AgentDep = Annotated[int, Depends(require_agent)]


@router.get("/calls/{call_sid}/context")
def get_call_context(
    call_sid: str, agent_id: AgentDep, session: ReadSessionDep
) -> CallContextOut:
    """Get what the agent needs for a live call: variables and its filled purpose."""
    attempt = _agent_call(session, call_sid, agent_id)
    _require_connected(session, attempt, call_sid)
    ended = attempt.ended_at
    if ended is not None and utcnow() - ended > CONTEXT_AFTER_END:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "call_ended",
            f"call {call_sid} ended at {ended.isoformat()}; its context is "
            "available only while it lasts",
        )
    contact = session.get(Contact, attempt.contact_id)
    agent = session.get(Agent, agent_id)
    # Foreign keys guarantee both rows.
    assert contact is not None
    assert agent is not None
    assert attempt.id is not None
    variables = contact_variables(contact)
    purpose, missing = fill_purpose(agent.purpose, variables)
    return CallContextOut(
        call_sid=call_sid,
        attempt_id=attempt.id,
        attempt_no=attempt.attempt_no,
        campaign_id=attempt.campaign_id,
        contact_id=attempt.contact_id,
        variables=variables,
        purpose=purpose,
        missing_variables=missing,
    )


@router.post("/calls/{call_sid}/report")
async def report_call(
    call_sid: str,
    body: CallReportIn,
    agent_id: AgentDep,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> CallReportOut:
    """Store the agent's report on an ended call; a repeated one changes nothing."""
    listing_labels = {label.strip().lower() for label in settings.do_not_call_labels}
    do_not_call = bool(listing_labels.intersection(body.labels))
    stored = await run_in_threadpool(
        _store_report, db, call_sid, agent_id, body, do_not_call
    )
    if stored.wake:
        await wake_members(temporal, stored.wake, settings.workflow_id_prefix)
    response.status_code = (
        status.HTTP_201_CREATED if stored.stored else status.HTTP_200_OK
    )
    return CallReportOut(
        attempt_id=stored.attempt_id,
        stored=stored.stored,
        labels=body.labels,
        do_not_call=do_not_call,
    )


@router.post(
    "/twilio/recording",
    tags=["twilio"],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def recording_status(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    signature: SignatureHeader = None,
    attempt: AttemptQuery = None,
) -> Response:
    """Record the call's recording from Twilio's recording status callback."""
    params = await verified_form(request, settings, signature)
    call_sid = params.get("CallSid")
    recording_status = params.get("RecordingStatus")
    if recording_status != "completed":
        # in-progress, absent and failed carry no recording to keep.
        logger.info("Recording of call %s is %s", call_sid, recording_status)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    recording = _recording(params)
    if not call_sid or recording is None:
        raise ApiError(
            status.HTTP_400_BAD_REQUEST,
            "invalid_callback",
            "recording callback lacks CallSid, RecordingSid or RecordingUrl",
        )
    await run_in_threadpool(_store_recording, db, call_sid, attempt, recording)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@dataclass(frozen=True)
class _StoredReport:
    attempt_id: int
    stored: bool
    # (campaign id, contact id) of the members to wake after a listing.
    wake: list[tuple[int, int]] = field(default_factory=list)


def _store_report(
    db: Database, call_sid: str, agent_id: int, body: CallReportIn, do_not_call: bool
) -> _StoredReport:
    with db.session() as session:
        attempt = _agent_call(session, call_sid, agent_id)
        _require_connected(session, attempt, call_sid)
        assert attempt.id is not None
        report = AgentReport(
            transcript=body.transcript,
            summary=body.summary,
            labels=tuple(body.labels),
            recording_url=body.recording_url,
        )
        try:
            stored = save_report(session, attempt.id, report, now=utcnow())
        except ReportConflict as error:
            raise ApiError(
                status.HTTP_409_CONFLICT, "already_reported", str(error)
            ) from error
        if stored and do_not_call:
            add_number(
                session,
                attempt.phone,
                source="agent",
                note=f"label from the agent on call attempt {attempt.id}",
            )
            _end_member(session, attempt)
        session.commit()
        wake = waiting_members(session, attempt.phone) if stored and do_not_call else []
    if stored:
        logger.info("Agent %s reported on call attempt %s", agent_id, attempt.id)
    return _StoredReport(attempt_id=attempt.id, stored=stored, wake=wake)


def _end_member(session: Session, attempt: CallAttempt) -> None:
    """End the contact's membership of the called campaign as do_not_call.

    The contact's workflow may record the call's end after this, and its
    member update keeps a do_not_call state.
    """
    member = session.get(CampaignMember, attempt.member_id)
    if member is None:
        return
    member.state = MemberState.DO_NOT_CALL
    member.reason = DO_NOT_CALL_REASON
    member.final_outcome = attempt.outcome or Outcome.ANSWERED
    member.next_attempt_at = None
    member.updated_at = utcnow()
    session.add(member)


def _store_recording(
    db: Database, call_sid: str, attempt_id: int | None, recording: Recording
) -> None:
    with db.session() as session:
        attempt = find_attempt(session, call_sid, attempt_id)
        if attempt is None or attempt.id is None:
            logger.warning("Recording callback for unknown call %s", call_sid)
            return
        save_recording(session, attempt.id, recording, now=utcnow())
        session.commit()


def _recording(params: dict[str, str]) -> Recording | None:
    sid = params.get("RecordingSid")
    url = params.get("RecordingUrl")
    if not sid or not url:
        return None
    duration = params.get("RecordingDuration", "")
    seconds = int(duration) if duration.isdigit() else None
    return Recording(sid=sid, url=url, seconds=seconds)


def _agent_call(session: Session, call_sid: str, agent_id: int) -> CallAttempt:
    """Find the agent's call, or raise 404 for a call of another agent too."""
    attempt = find_attempt(session, call_sid, None)
    campaign = session.get(Campaign, attempt.campaign_id) if attempt else None
    if attempt is None or campaign is None or campaign.agent_id != agent_id:
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            "not_found",
            f"call {call_sid} not found among this agent's calls",
        )
    return attempt


def _require_connected(session: Session, attempt: CallAttempt, call_sid: str) -> None:
    assert attempt.id is not None
    route = route_of(session, attempt.id)
    if route == Route.AGENT:
        return
    if attempt.outcome:
        detail = f"it ended as {attempt.outcome}"
    else:
        detail = "no person has answered it"
    raise ApiError(
        status.HTTP_409_CONFLICT,
        "call_not_answered",
        f"call {call_sid} was not connected to the agent: {detail}",
    )
