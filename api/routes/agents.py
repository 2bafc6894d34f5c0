"""Agents: the voice agent a campaign hands answered calls to, and its token."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import ApiKey, IdPath, SessionDep, SettingsDep
from api.errors import ApiError, not_found
from api.schemas import AgentCreate, AgentCreated, AgentOut, AgentTokenOut
from contacts.phones import InvalidPhone, normalize_phone
from store.models import Agent
from store.reports import issue_token

router = APIRouter(prefix="/agents", tags=["agents"], dependencies=[ApiKey])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_agent(
    body: AgentCreate, session: SessionDep, settings: SettingsDep
) -> AgentCreated:
    """Create an agent; the response holds its token, which is not shown again."""
    try:
        phone = normalize_phone(body.from_number, settings.default_region)
    except InvalidPhone as error:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "invalid_from_number",
            f"from_number: {error}",
        ) from error
    if not body.voice_url.startswith(("http://", "https://")):
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "invalid_voice_url",
            f"voice_url must be an http(s) URL, got {body.voice_url!r}",
        )
    agent = Agent(
        name=body.name,
        from_number=phone.e164,
        voice_url=body.voice_url,
        purpose=body.purpose,
    )
    session.add(agent)
    session.flush()
    assert agent.id is not None
    token = issue_token(session, agent.id)
    session.commit()
    out = AgentOut.model_validate(agent, from_attributes=True)
    return AgentCreated(**out.model_dump(), token=token)


@router.post("/{agent_id}/token", status_code=status.HTTP_201_CREATED)
def replace_agent_token(agent_id: IdPath, session: SessionDep) -> AgentTokenOut:
    """Issue a new token for the agent; its older tokens stop working at once."""
    if session.get(Agent, agent_id) is None:
        raise not_found("agent", agent_id)
    token = issue_token(session, agent_id)
    session.commit()
    return AgentTokenOut(agent_id=agent_id, token=token)


@router.get("")
def list_agents(session: SessionDep) -> list[AgentOut]:
    """List agents."""
    agents = session.exec(select(Agent).order_by(Agent.id)).all()
    return [AgentOut.model_validate(agent, from_attributes=True) for agent in agents]
