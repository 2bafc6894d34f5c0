"""What the Temporal web UI shows of a waiting contact, read through the client."""

from __future__ import annotations

from temporalio.api.sdk.v1 import WorkflowMetadata

from telephony.scenario import Scenario
from tests.conftest import eventually
from tests.engine import open_numbers, running_engine
from workflows import names


async def test_waiting_contact_as_web_ui_shows(dev_env, sqlite_db):
    (number,) = open_numbers(1)
    scenario = Scenario(numbers={number: ("busy", "human")}, time_scale=0.001)

    async with running_engine(dev_env, sqlite_db, scenario=scenario) as engine:
        report = await engine.import_csv([{"phone": number, "name": "Ana Silva"}])
        campaign_id = await engine.start_campaign(
            report["import_id"], retry_delay_seconds=3600
        )
        members = await eventually(
            lambda: _waiting_members(engine, campaign_id), timeout=60
        )
        workflow_id = members[0]["workflow_id"]
        query = (
            f'WorkflowId STARTS_WITH "{engine.settings.workflow_id_prefix}" AND '
            f'OutboundCampaignId = "{campaign_id}" AND OutboundMemberState = "waiting"'
        )
        # The database shows the wait first: the workflow's upsert reaches
        # Temporal once its notice to the campaign is sent, and visibility
        # follows a moment later.
        listed = await eventually(lambda: _listed(dev_env.client, query))
        handle = dev_env.client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        metadata = await handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        await engine.api.post(f"/campaigns/{campaign_id}/cancel")

    attributes = description.typed_search_attributes
    details = metadata.current_details
    assert attributes.get(names.CAMPAIGN_ID) == str(campaign_id)
    assert attributes.get(names.MEMBER_STATE) == "waiting"
    assert details.startswith("attempt 2 of 3, waiting until ")
    assert "retry 2 of 3 after busy" in details
    assert number not in details
    assert "Ana" not in details
    assert listed == [workflow_id]
    assert members[0]["reason"] == "retry 2 of 3 after busy"


async def _waiting_members(engine, campaign_id: int):
    response = await engine.api.get(
        f"/campaigns/{campaign_id}/members", params={"state": "waiting"}
    )
    items = response.json()["items"]
    return items if items else None


async def _listed(client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]
