"""What the engine learns about answered calls, and the agents' access to them.

The tables: each agent's bearer tokens, what the voice webhook did with each
answered call (its route), the agent's report with the call's recording, and
the report's labels one row each so that the inbox can filter on them.
Importing this module registers them on ``SQLModel.metadata``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import JSON, Column, Text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from store.models import CampaignMember, Contact, utcnow
from store.types import UtcDateTime
from telephony.outcome import Route

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "oagt_"
# Campaign creation lists at most this many contacts that lack a variable.
MAX_LISTED_CONTACTS = 1000
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class AgentToken(SQLModel, table=True):
    """A bearer token of one agent, kept only as its SHA-256 digest."""

    __tablename__ = "agent_token"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class CallRoute(SQLModel, table=True):
    """The voice webhook's handling of a call once it was picked up."""

    __tablename__ = "call_route"

    attempt_id: int = Field(primary_key=True, foreign_key="call_attempt.id")
    # A telephony.outcome.Route value.
    route: str = Field(max_length=32)
    answered_by: str | None = Field(default=None, max_length=32)
    routed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), nullable=False)
    )


class CallReport(SQLModel, table=True):
    """The agent's report on an answered call, and the call's recording."""

    __tablename__ = "call_report"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(foreign_key="call_attempt.id", unique=True)
    transcript: str | None = Field(default=None, sa_column=Column(Text))
    summary: str | None = Field(default=None, sa_column=Column(Text))
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    # SHA-256 of the report as received: the same report again changes
    # nothing, a different one is rejected.
    report_digest: str | None = Field(default=None, max_length=64)
    reported_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # From Twilio's recording status callback, or the agent's report when no
    # callback came.
    recording_url: str | None = None
    recording_sid: str | None = Field(default=None, max_length=64)
    recording_seconds: int | None = None
    recorded_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class CallLabel(SQLModel, table=True):
    """One label of one report."""

    __tablename__ = "call_label"

    attempt_id: int = Field(primary_key=True, foreign_key="call_attempt.id")
    label: str = Field(primary_key=True, max_length=64, index=True)


class ReportConflict(Exception):
    """Raised when a call that already has a report gets a different one."""


@dataclass(frozen=True)
class AgentReport:
    transcript: str | None
    summary: str | None
    labels: tuple[str, ...]
    recording_url: str | None = None

    def digest(self) -> str:
        body = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Recording:
    sid: str
    url: str
    seconds: int | None


@dataclass(frozen=True)
class MissingVariables:
    contact_id: int
    missing: list[str]


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a plain digest resists guessing. A slow
    # password hash would only slow every request down.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, agent_id: int) -> str:
    """Create a new token for the agent, revoke its older ones, return it."""
    now = utcnow()
    revoke = (
        update(AgentToken)
        .where(AgentToken.agent_id == agent_id, col(AgentToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    session.exec(revoke)  # type: ignore[call-overload]
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        AgentToken(agent_id=agent_id, token_hash=hash_token(token), created_at=now)
    )
    return token


def agent_for_token(session: Session, token: str) -> int | None:
    """Return the id of the agent that owns this live token, or None."""
    return session.exec(
        select(AgentToken.agent_id).where(
            AgentToken.token_hash == hash_token(token),
            col(AgentToken.revoked_at).is_(None),
        )
    ).first()


def variable_key(name: str) -> str:
    """Normalise a variable or placeholder name: ``First Name`` is ``first_name``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def placeholder_names(purpose: str) -> list[str]:
    """Return the normalised names of the purpose's ``{{variable}}`` placeholders."""
    names = (variable_key(match) for match in _PLACEHOLDER.findall(purpose))
    return list(dict.fromkeys(name for name in names if name))


def contact_variables(contact: Contact) -> dict[str, str]:
    """Return the values a purpose can use: the contact's variables and its name.

    Importing a CSV turns a ``name`` column into the contact's name rather
    than a variable, so ``{{name}}`` falls back to it.
    """
    values = {"name": contact.name} if contact.name else {}
    values.update(contact.variables or {})
    return {key: value for key, value in values.items() if value and value.strip()}


def fill_purpose(purpose: str, variables: dict[str, str]) -> tuple[str, list[str]]:
    """Fill the purpose's placeholders and return the text and the names left empty.

    A placeholder without a value stays in the text as written, so the agent
    can tell that a value is missing.
    """
    by_key = {variable_key(name): value for name, value in variables.items()}
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        key = variable_key(match.group(1))
        if key in by_key:
            return by_key[key]
        if key not in missing:
            missing.append(key)
        return match.group(0)

    return _PLACEHOLDER.sub(replace, purpose), missing


def members_missing_variables(
    session: Session, campaign_id: int, names: Iterable[str]
) -> tuple[list[MissingVariables], int]:
    """Find the campaign's contacts that lack a value for one of ``names``.

    Returns the first MAX_LISTED_CONTACTS of them in contact id order, and
    how many there are in all.
    """
    required = list(names)
    rows = session.exec(
        select(Contact)
        .join(CampaignMember, col(CampaignMember.contact_id) == col(Contact.id))
        .where(CampaignMember.campaign_id == campaign_id)
        .order_by(Contact.id)
        .execution_options(yield_per=1000)
    )
    listed: list[MissingVariables] = []
    total = 0
    for contact in rows:
        present = {variable_key(key) for key in contact_variables(contact)}
        missing = [name for name in required if name not in present]
        if not missing:
            continue
        total += 1
        if len(listed) < MAX_LISTED_CONTACTS:
            assert contact.id is not None
            listed.append(MissingVariables(contact_id=contact.id, missing=missing))
    return listed, total


def record_route(
    session: Session, attempt_id: int, route: Route, answered_by: str | None
) -> Route:
    """Store the route of an answered call once and return the stored one.

    A repeated voice request for the same call gets the first route, so the
    call is handled the same way and its outcome does not change.
    """
    existing = session.get(CallRoute, attempt_id)
    if existing is not None:
        return Route(existing.route)
    try:
        with session.begin_nested():
            session.add(
                CallRoute(attempt_id=attempt_id, route=route, answered_by=answered_by)
            )
    except IntegrityError:
        stored = session.get(CallRoute, attempt_id)
        assert stored is not None
        return Route(stored.route)
    return route


def route_of(session: Session, attempt_id: int) -> Route | None:
    row = session.get(CallRoute, attempt_id)
    return None if row is None else Route(row.route)


def voicemail_left(session: Session, attempt_id: int) -> bool:
    """Tell whether the voice webhook played the voicemail message on this call."""
    return route_of(session, attempt_id) == Route.VOICEMAIL_MESSAGE


def save_report(
    session: Session, attempt_id: int, report: AgentReport, *, now: datetime
) -> bool:
    """Store the agent's report and return True, or False for a repeated report.

    Raises:
        ReportConflict: the call already has a different report.
    """
    row = _locked_report(session, attempt_id)
    digest = report.digest()
    if row.report_digest == digest:
        return False
    if row.report_digest is not None:
        raise ReportConflict(
            f"call attempt {attempt_id} already has a different report, "
            f"stored at {row.reported_at}"
        )
    row.transcript = report.transcript
    row.summary = report.summary
    row.labels = list(report.labels)
    row.report_digest = digest
    row.reported_at = now
    if row.recording_url is None:
        row.recording_url = report.recording_url
    session.add(row)
    session.add_all(
        CallLabel(attempt_id=attempt_id, label=label)
        for label in dict.fromkeys(report.labels)
    )
    return True


def save_recording(
    session: Session, attempt_id: int, recording: Recording, *, now: datetime
) -> bool:
    """Store the call's recording and return True, or False if one was stored.

    The first recording is kept. It replaces a URL that only the agent's
    report gave, because Twilio's callback is signed.
    """
    row = _locked_report(session, attempt_id)
    if row.recording_sid is not None:
        if row.recording_sid != recording.sid:
            logger.info(
                "Attempt %s already has recording %s; recording %s is not kept",
                attempt_id,
                row.recording_sid,
                recording.sid,
            )
        return False
    row.recording_sid = recording.sid
    row.recording_url = recording.url
    row.recording_seconds = recording.seconds
    row.recorded_at = now
    session.add(row)
    return True


def reports_for(session: Session, attempt_ids: list[int]) -> dict[int, CallReport]:
    if not attempt_ids:
        return {}
    rows = session.exec(
        select(CallReport).where(col(CallReport.attempt_id).in_(attempt_ids))
    ).all()
    return {row.attempt_id: row for row in rows}


def _locked_report(session: Session, attempt_id: int) -> CallReport:
    """Return the attempt's report row, created if needed, locked for update.

    The agent's report and Twilio's recording callback arrive at about the
    same time, so both create the row the same way and then lock it.
    PostgreSQL honours the lock, and SQLite already serialises writers.
    """
    statement = (
        select(CallReport).where(CallReport.attempt_id == attempt_id).with_for_update()
    )
    row = session.exec(statement).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(CallReport(attempt_id=attempt_id))
    except IntegrityError:
        logger.debug("Report row of attempt %s created concurrently", attempt_id)
    row = session.exec(statement).first()
    assert row is not None
    return row
