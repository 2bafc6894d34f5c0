"""Activities that place calls and record how they ended."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gate import Verdict, aware, check_before_dial
from activities.policy import NextStep, step_after
from activities.settings import campaign_settings
from activities.types import (
    AttemptResult,
    CampaignSettings,
    Decision,
    FinishAttemptInput,
    MemberState,
    PlaceCallInput,
    PlaceCallResult,
)
from store.attempts import StatusReport, apply_status
from store.db import Database
from store.lines import (
    has_free_line,
    lock_lines,
    note_waiting,
    release_line,
    stop_waiting,
    take_dial_slot,
    take_line,
)
from store.models import (
    Agent,
    CallAttempt,
    Campaign,
    CampaignMember,
    Contact,
    LineLease,
    utcnow,
)
from telephony.outcome import (
    FINAL_STATUSES,
    PERMANENT_ERROR_CODES,
    machine_detection_mode,
)
from telephony.provider import (
    PermanentNumberError,
    ProviderBusy,
    ProviderCall,
    ProviderError,
    TelephonyProvider,
    extension_digits,
)
from workflows import names

# Error code recorded on an attempt whose call the provider has no record of.
LOST_CALL = "lost"
HTTP_NOT_FOUND = 404

logger = logging.getLogger(__name__)

# How often a contact waiting for a free line looks again, and how long one
# activity waits before handing the decision back to its workflow.
LINE_POLL_SECONDS = 0.2
LINE_WAIT_SECONDS = 20.0
# A call is cut this long before its line's lease runs out, for the final
# status to reach the engine.
CALL_END_MARGIN_SECONDS = 60
# A call found at the provider may have started a little before the attempt
# row's clock said so.
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class CallConfig:
    """What the call activities need from the process settings."""

    public_base_url: str
    plan_line_limit: int
    line_lease: timedelta
    line_wait_seconds: float = LINE_WAIT_SECONDS
    calls_per_second: float = 1.0


class CallActivities:
    def __init__(
        self,
        db: Database,
        provider: TelephonyProvider,
        config: CallConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._provider = provider
        self._config = config
        self._clock = clock

    @activity.defn(name=names.ACTIVITY_PLACE_CALL)
    def place_call(self, input: PlaceCallInput) -> PlaceCallResult:
        """Check, take a line, record the attempt, then create the call."""
        existing = self._existing_attempt(input)
        if existing is not None:
            return self._resume_attempt(existing)
        deadline = time.monotonic() + self._config.line_wait_seconds
        while True:
            result = self._try_reserve(input)
            if result is not None:
                break
            if time.monotonic() >= deadline:
                return PlaceCallResult(
                    decision=Decision.WAIT,
                    wait_until=self._clock(),
                    reason="waiting for a free line",
                )
            activity.heartbeat()
            time.sleep(LINE_POLL_SECONDS)
        if result.decision != Decision.DIALED:
            return result
        assert result.attempt_id is not None
        return self._create_call(result.attempt_id)

    @activity.defn(name=names.ACTIVITY_FINISH_ATTEMPT)
    def finish_attempt(self, input: FinishAttemptInput) -> AttemptResult:
        """Return the attempt's result, asking the provider if needed, and
        once it is final record the member's next step in the same
        transaction."""
        with self._db.session() as session:
            attempt = _get(session, CallAttempt, input.attempt_id, lock=True)
            if attempt.status not in FINAL_STATUSES and input.ask_provider:
                self._apply_provider_status(session, attempt)
            permanent = attempt.error_code in PERMANENT_ERROR_CODES
            if attempt.status not in FINAL_STATUSES:
                session.commit()
                return AttemptResult(
                    attempt_id=input.attempt_id, final=False, status=attempt.status
                )
            release_line(session, attempt.id)
            step = step_after(input, attempt.outcome, permanent_failure=permanent)
            state = self._record_step(session, input, attempt.outcome, step)
            session.commit()
            return AttemptResult(
                attempt_id=input.attempt_id,
                final=True,
                status=attempt.status,
                outcome=attempt.outcome,
                permanent_failure=permanent,
                member_state=state,
                retry_at=step.retry_at if state == MemberState.WAITING else None,
                reason=step.reason if state == MemberState.WAITING else None,
            )

    def _record_step(
        self,
        session: Session,
        input: FinishAttemptInput,
        outcome: str | None,
        step: NextStep,
    ) -> str:
        """Write the member's state after an attempt; return the state kept."""
        member = _get(session, CampaignMember, input.member_id)
        # A do-not-call request (an agent's label, or the API) that came in
        # while the call was ending outranks the state computed from the call.
        if member.state != MemberState.DO_NOT_CALL:
            member.state = step.state
            member.reason = step.reason
            member.final_outcome = None if step.retry_at else outcome
            member.next_attempt_at = step.retry_at
            member.retry_due_at = step.retry_at
        member.attempts_made = input.attempts_made
        member.last_outcome = outcome
        member.updated_at = self._clock()
        session.add(member)
        return member.state

    def _existing_attempt(self, input: PlaceCallInput) -> CallAttempt | None:
        with self._db.read_session() as session:
            return session.exec(
                select(CallAttempt).where(
                    CallAttempt.member_id == input.member_id,
                    CallAttempt.attempt_no == input.attempt_no,
                )
            ).first()

    def _resume_attempt(self, attempt: CallAttempt) -> PlaceCallResult:
        """Finish the work of an earlier try of this activity for the attempt.

        Twilio has no idempotency key, so a try that timed out may have made
        the call without learning its id. Look for that call before dialling.
        """
        assert attempt.id is not None
        if attempt.status in FINAL_STATUSES:
            return PlaceCallResult(
                decision=Decision.DIALED, attempt_id=attempt.id, attempt_final=True
            )
        if attempt.provider_sid is None:
            found = self._find_created_call(attempt)
            if found is None:
                blocked = self._recheck(attempt) or self._lost_line(attempt)
                if blocked is not None:
                    return blocked
                return self._create_call(attempt.id)
            with self._db.session() as session:
                row = _get(session, CallAttempt, attempt.id)
                if row.provider_sid is None:
                    row.provider_sid = found.sid
                    row.dialed_at = row.dialed_at or self._clock()
                    apply_status(session, row, _report(found))
                session.commit()
                attempt = row
        return PlaceCallResult(
            decision=Decision.DIALED,
            attempt_id=attempt.id,
            attempt_final=attempt.status in FINAL_STATUSES,
        )

    def _recheck(self, attempt: CallAttempt) -> PlaceCallResult | None:
        """Check again before dialling an attempt recorded by an earlier try."""
        now = self._clock()
        with self._db.session() as session:
            member = _get(session, CampaignMember, attempt.member_id)
            # The attempt is already counted, so the attempts check would
            # wrongly stop it; compare against the attempts before it.
            member.attempts_made = attempt.attempt_no - 1
            verdict, _settings = _check(session, member, now)
            session.rollback()
        if verdict.decision == Decision.DIALED:
            return None
        self._forget_attempt(attempt.id)
        with self._db.session() as session:
            member = _get(session, CampaignMember, attempt.member_id)
            self._record_verdict(session, member, verdict, now)
            session.commit()
        return PlaceCallResult(
            decision=verdict.decision,
            wait_until=verdict.until,
            reason=verdict.reason,
            member_state=verdict.member_state,
        )

    def _lost_line(self, attempt: CallAttempt) -> PlaceCallResult | None:
        """Give up an attempt whose line lease ran out before its call was made.

        Its line may already carry another call, so dialling now could exceed
        the plan's limit; the contact asks for a line again instead.
        """
        with self._db.read_session() as session:
            lease = session.exec(
                select(LineLease).where(LineLease.attempt_id == attempt.id)
            ).first()
            held = lease is not None and lease.expires_at > self._clock()
        if held:
            return None
        self._forget_attempt(attempt.id)
        return PlaceCallResult(
            decision=Decision.WAIT,
            wait_until=self._clock(),
            reason="waiting for a free line",
        )

    def _find_created_call(self, attempt: CallAttempt) -> ProviderCall | None:
        with self._db.read_session() as session:
            campaign = _get(session, Campaign, attempt.campaign_id)
            agent = _get(session, Agent, campaign.agent_id)
            linked = set(
                session.exec(
                    select(CallAttempt.provider_sid).where(
                        CallAttempt.phone == attempt.phone,
                        CallAttempt.provider_sid.is_not(None),  # type: ignore[union-attr]
                    )
                ).all()
            )
        started_after = aware(attempt.created_at) - CLOCK_SKEW
        calls = self._provider.find_calls(
            to=attempt.phone, from_=agent.from_number, started_after=started_after
        )
        unlinked = [call for call in calls if call.sid not in linked]
        return unlinked[0] if unlinked else None

    def _try_reserve(self, input: PlaceCallInput) -> PlaceCallResult | None:
        """Run the check and, when it says dial, take a line and record the
        attempt, all in one transaction. Returns None while no line is free."""
        now = self._clock()
        with self._db.session() as session:
            lock_lines(session)
            member = _get(session, CampaignMember, input.member_id)
            verdict, settings = _check(session, member, now)
            if verdict.decision != Decision.DIALED:
                self._record_verdict(session, member, verdict, now)
                session.commit()
                return PlaceCallResult(
                    decision=verdict.decision,
                    wait_until=verdict.until,
                    reason=verdict.reason,
                    member_state=verdict.member_state,
                )
            if not self._may_dial_now(session, member, settings, now):
                note_waiting(
                    session,
                    member_id=member.id,
                    campaign_id=member.campaign_id,
                    now=now,
                )
                session.commit()
                return None
            stop_waiting(session, member.id)
            attempt = CallAttempt(
                member_id=member.id,
                campaign_id=member.campaign_id,
                contact_id=member.contact_id,
                attempt_no=input.attempt_no,
                phone=_get(session, Contact, member.contact_id).phone,
                created_at=now,
            )
            session.add(attempt)
            session.flush()
            take_line(
                session,
                attempt_id=attempt.id,
                campaign_id=member.campaign_id,
                now=now,
                lease=self._config.line_lease,
            )
            member.state = MemberState.DIALING
            member.attempts_made = input.attempt_no
            member.next_attempt_at = None
            member.retry_due_at = None
            member.reason = None
            member.updated_at = now
            session.add(member)
            session.commit()
            return PlaceCallResult(decision=Decision.DIALED, attempt_id=attempt.id)

    def _may_dial_now(
        self,
        session: Session,
        member: CampaignMember,
        settings: CampaignSettings,
        now: datetime,
    ) -> bool:
        """Take a line and a call-creation slot, or neither."""
        if not has_free_line(
            session,
            now,
            plan_limit=self._config.plan_line_limit,
            campaign_id=member.campaign_id,
            campaign_limit=settings.max_concurrent_calls,
        ):
            return False
        return take_dial_slot(session, now, self._config.calls_per_second)

    def _record_verdict(self, session: Session, member: CampaignMember, verdict, now):
        member.reason = verdict.reason
        member.updated_at = now
        if verdict.decision == Decision.NEVER:
            member.state = verdict.member_state or MemberState.NOT_CALLED
            member.next_attempt_at = None
            member.final_outcome = member.last_outcome
        else:
            member.state = MemberState.WAITING
            member.next_attempt_at = verdict.until
        session.add(member)

    def _create_call(self, attempt_id: int) -> PlaceCallResult:
        with self._db.read_session() as session:
            attempt = _get(session, CallAttempt, attempt_id)
            campaign = _get(session, Campaign, attempt.campaign_id)
            agent = _get(session, Agent, campaign.agent_id)
            contact = _get(session, Contact, attempt.contact_id)
            lease = session.exec(
                select(LineLease).where(LineLease.attempt_id == attempt_id)
            ).first()
        settings = campaign_settings(campaign)
        if lease is None:
            # Released by the webhook or purged: the line may carry another call.
            self._forget_attempt(attempt_id)
            return PlaceCallResult(
                decision=Decision.WAIT,
                wait_until=self._clock(),
                reason="waiting for a free line",
            )
        # The engine's own voice webhook answers first and decides, from who
        # answered, between the agent, the voicemail message and hanging up.
        base_url = self._config.public_base_url.rstrip("/")
        try:
            sid = self._provider.create_call(
                to=contact.phone,
                from_=agent.from_number,
                voice_url=f"{base_url}/twilio/voice?attempt={attempt_id}",
                status_callback=self._status_callback_url(attempt_id),
                ring_timeout=settings.ring_timeout_seconds,
                machine_detection=machine_detection_mode(settings),
                send_digits=extension_digits(contact.extension)
                if contact.extension
                else None,
                time_limit=self._time_limit(
                    lease.expires_at, settings.ring_timeout_seconds
                ),
            )
        except ProviderBusy as error:
            self._forget_attempt(attempt_id)
            raise ApplicationError(
                f"provider rate limit, attempt {attempt.attempt_no} not used: {error}",
                type="ProviderBusy",
            ) from error
        except PermanentNumberError as error:
            return self._fail_attempt(attempt_id, str(error.code), str(error))
        except ProviderError as error:
            if error.status is not None and 400 <= error.status < 500:
                return self._fail_attempt(attempt_id, str(error.code), str(error))
            raise
        return self._mark_dialed(attempt_id, sid)

    def _time_limit(self, lease_expires_at: datetime, ring_timeout: int) -> int:
        """Return the call's TimeLimit in seconds, so it ends before its lease.

        A call that outlived its line's lease would run beside the call that
        takes the line next, one more than the plan allows. Twilio's
        reference does not say whether the limit counts from the answer, so
        the ring timeout is taken off as well. A very short lease, as in
        tests, still gives the call one second.
        """
        remaining = (aware(lease_expires_at) - self._clock()).total_seconds()
        return max(1, math.floor(remaining) - ring_timeout - CALL_END_MARGIN_SECONDS)

    def _mark_dialed(self, attempt_id: int, sid: str) -> PlaceCallResult:
        with self._db.session() as session:
            # The row is locked while it changes, and a final status that a
            # callback stored meanwhile is never set back to queued.
            attempt = _get(session, CallAttempt, attempt_id, lock=True)
            if attempt.provider_sid is None:
                attempt.provider_sid = sid
            if attempt.status == "creating":
                attempt.status = "queued"
            attempt.dialed_at = attempt.dialed_at or self._clock()
            session.add(attempt)
            session.commit()
            final = attempt.status in FINAL_STATUSES
        return PlaceCallResult(
            decision=Decision.DIALED, attempt_id=attempt_id, attempt_final=final
        )

    def _fail_attempt(
        self, attempt_id: int, code: str, message: str
    ) -> PlaceCallResult:
        with self._db.session() as session:
            attempt = _get(session, CallAttempt, attempt_id)
            attempt.error_code = code
            attempt.error_message = message[:500]
            attempt.status = "failed"
            attempt.outcome = "failed"
            attempt.ended_at = self._clock()
            release_line(session, attempt_id)
            session.add(attempt)
            session.commit()
        logger.info(
            "Provider rejected the call of attempt %s: error %s", attempt_id, code
        )
        return PlaceCallResult(
            decision=Decision.DIALED, attempt_id=attempt_id, attempt_final=True
        )

    def _forget_attempt(self, attempt_id: int) -> None:
        """Undo a recorded attempt whose call the provider did not accept."""
        with self._db.session() as session:
            attempt = _get(session, CallAttempt, attempt_id)
            member = _get(session, CampaignMember, attempt.member_id)
            member.attempts_made = attempt.attempt_no - 1
            member.state = MemberState.WAITING
            release_line(session, attempt_id)
            session.delete(attempt)
            session.add(member)
            session.commit()

    def _apply_provider_status(self, session: Session, attempt: CallAttempt) -> None:
        if attempt.provider_sid is None:
            found = self._find_created_call(attempt)
            if found is None:
                # No call was ever made for this attempt.
                apply_status(
                    session, attempt, StatusReport("", "failed", error_code=LOST_CALL)
                )
                return
            attempt.provider_sid = found.sid
            call = found
        else:
            try:
                call = self._provider.fetch_call(attempt.provider_sid)
            except ProviderError as error:
                if error.status != HTTP_NOT_FOUND:
                    raise
                # The provider has no record of the call, as after a restart
                # of the simulator, so no final status will ever come.
                logger.warning(
                    "Call %s of attempt %s not found at the provider; "
                    "the attempt ends as failed",
                    attempt.provider_sid,
                    attempt.id,
                )
                report = StatusReport(
                    attempt.provider_sid, "failed", error_code=LOST_CALL
                )
                apply_status(session, attempt, report)
                return
        apply_status(session, attempt, _report(call))

    def _status_callback_url(self, attempt_id: int) -> str:
        return f"{self._config.public_base_url.rstrip('/')}/twilio/status?attempt={attempt_id}"


def _check(
    session: Session, member: CampaignMember, now: datetime
) -> tuple[Verdict, CampaignSettings]:
    """Run the check before a dial for this member, with its campaign's settings."""
    campaign = _get(session, Campaign, member.campaign_id)
    contact = _get(session, Contact, member.contact_id)
    settings = campaign_settings(campaign)
    verdict = check_before_dial(
        session,
        campaign=campaign,
        member=member,
        contact=contact,
        settings=settings,
        now=now,
    )
    return verdict, settings


def _report(call: ProviderCall) -> StatusReport:
    return StatusReport(
        provider_sid=call.sid,
        status=call.status,
        answered_by=call.answered_by,
        duration_seconds=call.duration,
        error_code=str(call.error_code) if call.error_code else None,
        at=call.end_time,
    )


def _get(session: Session, model, key: int, *, lock: bool = False):
    # On PostgreSQL, lock=True holds the row until commit, so a webhook and an
    # activity changing the same attempt take turns; SQLite's write lock
    # already serialises them.
    row = session.get(model, key, with_for_update=lock or None)
    if row is None:
        raise ApplicationError(
            f"{model.__name__} {key} not found", type="NotFound", non_retryable=True
        )
    return row
