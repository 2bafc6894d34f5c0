"""The check before every dial, run as an activity on a test database."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.calls import CallActivities, CallConfig
from activities.settings import settings_to_dict
from activities.types import (
    CampaignSettings,
    Decision,
    FinishAttemptInput,
    PlaceCallInput,
)
from store.attempts import StatusReport, apply_status
from store.db import Database
from store.lines import note_waiting, release_line
from store.models import (
    Agent,
    CallAttempt,
    Campaign,
    CampaignMember,
    Contact,
    DoNotCall,
    LineLease,
)
from telephony.provider import ProviderCall, ProviderError

# Wednesday 2026-12-02 at noon in New York.
NOON_EASTERN = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
DC_NUMBER = "+12025550171"
FLORIDA_NUMBER = "+13055550172"


@dataclass
class FakeProvider:
    """Records creates; ``existing`` are calls it already holds."""

    creates: list[str] = field(default_factory=list)
    existing: list[ProviderCall] = field(default_factory=list)
    time_limits: list[int | None] = field(default_factory=list)

    def create_call(self, *, to: str, time_limit: int | None = None, **_: Any) -> str:
        self.creates.append(to)
        self.time_limits.append(time_limit)
        return f"CA{len(self.creates):032d}"

    def find_calls(
        self, *, to: str, from_: str, started_after: datetime
    ) -> list[ProviderCall]:
        return list(self.existing)

    def fetch_call(self, sid: str) -> ProviderCall:
        for call in self.existing:
            if call.sid == sid:
                return call
        raise ProviderError(20404, 404, f"call {sid} not found")


@dataclass
class Clock:
    now: datetime = NOON_EASTERN

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    db: Database
    provider: FakeProvider
    clock: Clock
    activities: CallActivities
    agent_id: int

    def campaign(self, **settings: Any) -> int:
        values = {"require_consent": False, **settings}
        with self.db.session() as session:
            campaign = Campaign(
                name="c",
                agent_id=self.agent_id,
                status="running",
                settings=settings_to_dict(CampaignSettings(**values)),
            )
            session.add(campaign)
            session.commit()
            return campaign.id

    def member(self, campaign_id: int, phone: str = DC_NUMBER, **contact: Any) -> int:
        with self.db.session() as session:
            row = session.exec(select(Contact).where(Contact.phone == phone)).first()
            if row is None:
                row = Contact(phone=phone, **contact)
                session.add(row)
                session.flush()
            member = CampaignMember(campaign_id=campaign_id, contact_id=row.id)
            session.add(member)
            session.commit()
            return member.id

    def place(self, member_id: int, attempt_no: int = 1):
        with self.db.session() as session:
            campaign_id = session.get(CampaignMember, member_id).campaign_id
        result = ActivityEnvironment().run(
            self.activities.place_call,
            PlaceCallInput(campaign_id, member_id, attempt_no),
        )
        # Time moves on between dials, as the call pacer expects.
        self.clock.now += timedelta(seconds=1)
        return result

    def end_call(self, attempt_id: int, status: str = "no-answer") -> None:
        with self.db.session() as session:
            attempt = session.get(CallAttempt, attempt_id)
            apply_status(session, attempt, StatusReport(attempt.provider_sid, status))
            session.commit()


@pytest.fixture
def world(db: Database) -> World:
    provider = FakeProvider()
    clock = Clock()
    config = CallConfig(
        public_base_url="http://127.0.0.1:9",
        plan_line_limit=2,
        line_lease=timedelta(hours=1),
        line_wait_seconds=0.5,
        calls_per_second=1.0,
    )
    with db.session() as session:
        agent = Agent(
            name="a", from_number="+12025550100", voice_url="https://a.test/v"
        )
        session.add(agent)
        session.commit()
        agent_id = agent.id
    activities = CallActivities(db, provider, config, clock=clock)  # type: ignore[arg-type]
    return World(db, provider, clock, activities, agent_id)


def test_dial_records_attempt_before_call(world):
    member = world.member(world.campaign())

    result = world.place(member)

    assert result.decision == Decision.DIALED
    assert world.provider.creates == [DC_NUMBER]
    with world.db.session() as session:
        attempt = session.get(CallAttempt, result.attempt_id)
    assert attempt.provider_sid is not None
    assert attempt.created_at == NOON_EASTERN


def test_call_time_limit_ends_before_lease(world):
    member = world.member(world.campaign(ring_timeout_seconds=30))

    world.place(member)

    # The lease is one hour: the call may last until a minute before it ends,
    # less the ring timeout.
    assert world.provider.time_limits == [3600 - 30 - 60]


def test_attempt_without_lease_not_dialled(world):
    member = world.member(world.campaign())
    reserved = world.activities._try_reserve(PlaceCallInput(1, member, 1))
    with world.db.session() as session:
        release_line(session, reserved.attempt_id)
        session.commit()

    result = world.activities._create_call(reserved.attempt_id)

    assert result.decision == Decision.WAIT
    assert world.provider.creates == []
    with world.db.session() as session:
        assert session.get(CallAttempt, reserved.attempt_id) is None
        assert session.get(CampaignMember, member).attempts_made == 0


def test_listed_number_never_dialled(world):
    member = world.member(world.campaign())
    with world.db.session() as session:
        session.add(DoNotCall(phone=DC_NUMBER))
        session.commit()

    result = world.place(member)

    assert result.decision == Decision.NEVER
    assert result.member_state == "do_not_call"
    assert world.provider.creates == []


def test_number_listed_before_retry_stops_it(world):
    member = world.member(world.campaign())
    first = world.place(member)
    world.end_call(first.attempt_id)
    with world.db.session() as session:
        session.add(DoNotCall(phone=DC_NUMBER))
        session.commit()

    second = world.place(member, attempt_no=2)

    assert second.decision == Decision.NEVER
    assert world.provider.creates == [DC_NUMBER]


def test_missing_consent_not_called(world):
    member = world.member(world.campaign(require_consent=True))

    result = world.place(member)

    assert result.decision == Decision.NEVER
    assert "consent" in result.reason
    assert world.provider.creates == []


def test_recorded_consent_is_called(world):
    campaign = world.campaign(require_consent=True)
    member = world.member(campaign, consent_basis="express")

    result = world.place(member)

    assert result.decision == Decision.DIALED


def test_outside_hours_waits_for_opening(world):
    world.clock.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 07:00 in New York
    member = world.member(world.campaign())

    result = world.place(member)

    assert result.decision == Decision.WAIT
    assert result.wait_until == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert "America/New_York" in result.reason
    assert world.provider.creates == []


def test_unknown_zone_never_called(world):
    member = world.member(world.campaign(), phone="+18005550173")

    result = world.place(member)

    assert result.decision == Decision.NEVER
    assert "time zone unknown" in result.reason


def test_paused_campaign_waits(world):
    campaign = world.campaign()
    member = world.member(campaign)
    with world.db.session() as session:
        session.get(Campaign, campaign).status = "paused"
        session.commit()

    result = world.place(member)

    assert result.decision == Decision.WAIT
    assert result.reason == "campaign paused"
    assert world.provider.creates == []


def test_florida_limit_spans_campaigns(world):
    first_campaign, second_campaign = world.campaign(), world.campaign()
    one = world.member(first_campaign, phone=FLORIDA_NUMBER)
    two = world.member(second_campaign, phone=FLORIDA_NUMBER)
    dials = []
    for member, attempt_no in ((one, 1), (two, 1), (one, 2), (two, 2)):
        result = world.place(member, attempt_no)
        dials.append(result.decision)
        if result.decision == Decision.DIALED:
            world.end_call(result.attempt_id)
        world.clock.now += timedelta(minutes=30) - timedelta(seconds=1)

    assert dials == [Decision.DIALED] * 3 + [Decision.WAIT]
    assert result.wait_until == NOON_EASTERN + timedelta(hours=24)
    assert "3 calls in 24 hours" in result.reason
    assert len(world.provider.creates) == 3


def test_plan_limit_holds_third_call(world):
    campaign = world.campaign()
    members = [world.member(campaign, phone=f"+1202555018{i}") for i in range(3)]

    results = [world.place(member) for member in members]

    assert [r.decision for r in results] == [
        Decision.DIALED,
        Decision.DIALED,
        Decision.WAIT,
    ]
    assert results[2].reason == "waiting for a free line"
    assert len(world.provider.creates) == 2


def test_final_status_frees_line(world):
    campaign = world.campaign()
    members = [world.member(campaign, phone=f"+1202555018{i}") for i in range(3)]
    first = world.place(members[0])
    world.place(members[1])
    world.end_call(first.attempt_id, "busy")

    third = world.place(members[2])

    assert third.decision == Decision.DIALED


def test_expired_lease_frees_line(world):
    campaign = world.campaign()
    members = [world.member(campaign, phone=f"+1202555018{i}") for i in range(3)]
    world.place(members[0])
    world.place(members[1])
    # The holders vanished without a final status; their leases run out.
    world.clock.now += timedelta(hours=1, seconds=1)

    third = world.place(members[2])

    assert third.decision == Decision.DIALED


def test_campaign_share_capped(world):
    campaign = world.campaign(max_concurrent_calls=1)
    members = [world.member(campaign, phone=f"+1202555018{i}") for i in range(2)]

    results = [world.place(member) for member in members]

    assert [r.decision for r in results] == [Decision.DIALED, Decision.WAIT]


def test_retried_activity_finds_its_call(world):
    member = world.member(world.campaign())
    first = world.place(member)
    with world.db.session() as session:
        # As if the create response was lost: the call exists, its id not saved.
        attempt = session.get(CallAttempt, first.attempt_id)
        sid, attempt.provider_sid, attempt.status = (
            attempt.provider_sid,
            None,
            "creating",
        )
        session.commit()
    world.provider.existing.append(
        ProviderCall(
            sid=sid,
            status="ringing",
            answered_by=None,
            duration=None,
            date_created=NOON_EASTERN,
            start_time=None,
            end_time=None,
            error_code=None,
        )
    )

    again = world.place(member)

    assert again.attempt_id == first.attempt_id
    assert world.provider.creates == [DC_NUMBER]


def test_retried_activity_rechecks_list(world):
    member = world.member(world.campaign())
    first = world.place(member)
    with world.db.session() as session:
        attempt = session.get(CallAttempt, first.attempt_id)
        attempt.provider_sid, attempt.status = None, "creating"
        session.add(DoNotCall(phone=DC_NUMBER))
        session.commit()
    world.provider.creates.clear()

    again = world.place(member)

    assert again.decision == Decision.NEVER
    assert world.provider.creates == []


def finish(
    world: World,
    member_id: int,
    attempt_id: int,
    attempts_made: int = 1,
    ask_provider: bool = False,
):
    return ActivityEnvironment().run(
        world.activities.finish_attempt,
        FinishAttemptInput(
            attempt_id=attempt_id,
            member_id=member_id,
            attempts_made=attempts_made,
            max_attempts=3,
            retry_outcomes=("no_answer", "busy", "voicemail"),
            retry_delay_seconds=4 * 3600,
            now=NOON_EASTERN,
            ask_provider=ask_provider,
        ),
    )


def test_finish_releases_line(world):
    member = world.member(world.campaign())
    placed = world.place(member)
    world.end_call(placed.attempt_id, "completed")

    result = finish(world, member, placed.attempt_id)

    assert result.final is True
    assert result.outcome == "answered"
    assert result.member_state == "answered"
    with world.db.session() as session:
        assert session.exec(select(LineLease)).all() == []
        row = session.get(CampaignMember, member)
    assert row.state == "answered"
    assert row.final_outcome == "answered"


def test_finish_records_the_retry_with_the_end(world):
    member = world.member(world.campaign())
    placed = world.place(member)
    world.end_call(placed.attempt_id, "no-answer")

    result = finish(world, member, placed.attempt_id)

    retry_at = NOON_EASTERN + timedelta(hours=4)
    assert (result.member_state, result.retry_at) == ("waiting", retry_at)
    assert result.reason == "retry 2 of 3 after no_answer"
    with world.db.session() as session:
        row = session.get(CampaignMember, member)
    assert row.state == "waiting"
    assert row.final_outcome is None
    assert row.last_outcome == "no_answer"
    assert row.retry_due_at.replace(tzinfo=UTC) == retry_at


def test_finish_after_last_attempt_exhausts(world):
    member = world.member(world.campaign())
    placed = world.place(member, attempt_no=3)
    world.end_call(placed.attempt_id, "busy")

    result = finish(world, member, placed.attempt_id, attempts_made=3)

    assert (result.member_state, result.retry_at) == ("exhausted", None)
    with world.db.session() as session:
        row = session.get(CampaignMember, member)
    assert (row.state, row.final_outcome, row.attempts_made) == ("exhausted", "busy", 3)


def test_finish_keeps_do_not_call(world):
    member = world.member(world.campaign())
    placed = world.place(member)
    world.end_call(placed.attempt_id, "no-answer")
    with world.db.session() as session:
        row = session.get(CampaignMember, member)
        row.state = "do_not_call"
        session.add(row)
        session.commit()

    result = finish(world, member, placed.attempt_id)

    assert (result.member_state, result.retry_at) == ("do_not_call", None)
    with world.db.session() as session:
        assert session.get(CampaignMember, member).state == "do_not_call"


def test_live_call_leaves_member_alone(world):
    member = world.member(world.campaign())
    placed = world.place(member)

    result = finish(world, member, placed.attempt_id)

    assert (result.final, result.member_state) == (False, None)
    with world.db.session() as session:
        assert session.get(CampaignMember, member).state == "dialing"
        assert len(session.exec(select(LineLease)).all()) == 1


def test_call_unknown_to_provider_fails(world):
    # The provider lost the call (the simulator restarted): the attempt ends
    # and frees its line instead of asking again for ever.
    member = world.member(world.campaign())
    placed = world.place(member)

    result = finish(world, member, placed.attempt_id, ask_provider=True)

    assert result.final is True
    assert result.status == "failed"
    assert result.member_state == "failed"
    with world.db.session() as session:
        attempt = session.get(CallAttempt, placed.attempt_id)
        leases = session.exec(select(LineLease)).all()
    assert attempt.error_code == "lost"
    assert leases == []


def test_mark_dialed_keeps_final_status(world):
    """A callback's final status is never set back to queued by the dialler."""
    member = world.member(world.campaign())
    reserved = world.activities._try_reserve(PlaceCallInput(1, member, 1))
    attempt_id = reserved.attempt_id
    marked: list = []
    with world.db.session() as session:
        # The callback's transaction locks the attempt while the dialler
        # tries to mark it dialled.
        attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
        dialler = threading.Thread(
            target=lambda: marked.append(
                world.activities._mark_dialed(attempt_id, "CA" + "1" * 32)
            )
        )
        dialler.start()
        time.sleep(0.3)
        apply_status(session, attempt, StatusReport("CA" + "1" * 32, "completed"))
        session.commit()
    dialler.join(timeout=30)

    assert marked and marked[0].attempt_final is True
    with world.db.session() as session:
        assert session.get(CallAttempt, attempt_id).status == "completed"


def test_pacer_spaces_call_creation(world):
    campaign = world.campaign()
    members = [world.member(campaign, phone=f"+1202555018{i}") for i in range(2)]
    world.place(members[0])
    world.clock.now -= timedelta(seconds=1)  # back to the first dial's second

    second = world.place(members[1])

    assert second.decision == Decision.WAIT
    assert len(world.provider.creates) == 1


def test_waiting_campaign_gets_fair_share(world):
    world.activities._config = replace(world.activities._config, plan_line_limit=4)
    busy, starved = world.campaign(), world.campaign()
    busy_members = [world.member(busy, phone=f"+1202555018{i}") for i in range(3)]
    starved_member = world.member(starved, phone="+13125550189")
    world.place(busy_members[0])
    world.place(busy_members[1])
    with world.db.session() as session:
        note_waiting(
            session, member_id=starved_member, campaign_id=starved, now=world.clock.now
        )
        session.commit()

    third = world.place(busy_members[2])
    other = world.place(starved_member)

    assert third.decision == Decision.WAIT
    assert other.decision == Decision.DIALED


def test_retry_not_dialled_before_due(world):
    member = world.member(world.campaign())
    due = NOON_EASTERN + timedelta(hours=4)
    with world.db.session() as session:
        row = session.get(CampaignMember, member)
        row.retry_due_at, row.reason = due, "retry 2 of 3 after no_answer"
        session.commit()

    result = world.place(member, attempt_no=2)

    assert result.decision == Decision.WAIT
    assert result.wait_until == due
    assert result.reason == "retry 2 of 3 after no_answer"
    assert world.provider.creates == []


def test_retry_after_lost_lease_waits(world):
    member = world.member(world.campaign())
    first = world.place(member)
    with world.db.session() as session:
        attempt = session.get(CallAttempt, first.attempt_id)
        attempt.provider_sid, attempt.status = None, "creating"
        session.commit()
    world.provider.creates.clear()
    world.clock.now += timedelta(hours=2)  # past the one-hour lease

    again = world.place(member)

    assert again.decision == Decision.WAIT
    assert world.provider.creates == []
