"""The voice webhook: what an answered call hears, decided by who answered.

Every call's Url points here with the attempt id in the query string. A person
is redirected to the agent's voice URL, after the call's recording starts when
the campaign records calls. An answering machine whose greeting has ended
hears the campaign's voicemail message. Every other machine, and a fax, is
hung up on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from twilio.twiml.voice_response import VoiceResponse

from activities.settings import campaign_settings
from api.deps import AttemptQuery, DbDep, SettingsDep
from api.errors import ApiError
from api.routes.twilio import verify_signature
from config import Settings
from store.attempts import find_attempt
from store.db import Database
from store.models import Agent, Campaign
from store.reports import record_route
from telephony.outcome import Route, route_for

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])

TWIML_MEDIA_TYPE = "application/xml"
SignatureHeader = Annotated[str | None, Header(alias="X-Twilio-Signature")]


@dataclass(frozen=True)
class VoicePlan:
    attempt_id: int
    route: Route
    agent_voice_url: str
    record: bool
    voicemail_text: str | None
    voicemail_audio_url: str | None


async def verified_form(
    request: Request, settings: Settings, signature: str | None
) -> dict[str, str]:
    """Read a request from Twilio and check its signature, or raise ApiError."""
    form = await request.form()
    params = {key: str(value) for key, value in form.items()}
    verify_signature(
        settings.public_base_url, settings.twilio_auth_token, request, params, signature
    )
    return params


@router.post("/voice", response_class=Response)
async def answer_call(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    signature: SignatureHeader = None,
    attempt: AttemptQuery = None,
) -> Response:
    """Return the TwiML for an answered call: agent, voicemail message or hang up."""
    params = await verified_form(request, settings, signature)
    call_sid = params.get("CallSid")
    if not call_sid:
        raise ApiError(
            status.HTTP_400_BAD_REQUEST, "invalid_callback", "request lacks CallSid"
        )
    answered_by = params.get("AnsweredBy") or None
    plan = await run_in_threadpool(_plan, db, call_sid, attempt, answered_by)
    if plan is None:
        logger.warning("Voice request for unknown call %s; hanging up", call_sid)
    else:
        logger.debug("Call %s answered by %s: %s", call_sid, answered_by, plan.route)
    twiml = build_twiml(plan, settings.public_base_url)
    return Response(twiml, media_type=TWIML_MEDIA_TYPE)


def _plan(
    db: Database, call_sid: str, attempt_id: int | None, answered_by: str | None
) -> VoicePlan | None:
    with db.session() as session:
        attempt = find_attempt(session, call_sid, attempt_id)
        if attempt is None or attempt.id is None:
            return None
        campaign = session.get(Campaign, attempt.campaign_id)
        agent = session.get(Agent, campaign.agent_id) if campaign else None
        if campaign is None or agent is None:
            return None
        settings = campaign_settings(campaign)
        # The outcome is decided from who answered, and this request may say
        # so before any status callback does.
        if answered_by and not attempt.answered_by:
            attempt.answered_by = answered_by
            session.add(attempt)
        route = record_route(
            session, attempt.id, route_for(answered_by, settings), answered_by
        )
        session.commit()
        return VoicePlan(
            attempt_id=attempt.id,
            route=route,
            agent_voice_url=agent.voice_url,
            record=settings.record_calls,
            voicemail_text=settings.voicemail_text,
            voicemail_audio_url=settings.voicemail_audio_url,
        )


def build_twiml(plan: VoicePlan | None, public_base_url: str) -> str:
    response = VoiceResponse()
    if plan is None or plan.route == Route.HANGUP:
        response.hangup()
    elif plan.route == Route.AGENT:
        if plan.record:
            callback = (
                f"{public_base_url.rstrip('/')}/twilio/recording"
                f"?attempt={plan.attempt_id}"
            )
            response.start().recording(
                recording_status_callback=callback,
                recording_status_callback_method="POST",
            )
        response.redirect(plan.agent_voice_url, method="POST")
    else:
        if plan.voicemail_audio_url:
            response.play(plan.voicemail_audio_url)
        else:
            response.say(plan.voicemail_text)
        response.hangup()
    return str(response)
