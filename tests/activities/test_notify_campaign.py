"""notify_campaign signals the campaign's current run, or reports it closed."""

from __future__ import annotations

from temporalio import workflow
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.campaign import CampaignActivities
from activities.types import CampaignNotice
from workflows import names


@workflow.defn(name="NoticeListener")
class NoticeListener:
    """A stand-in campaign that returns the first finished member it receives."""

    def __init__(self) -> None:
        self._finished: list[int] = []

    @workflow.signal(name=names.SIGNAL_CONTACT_FINISHED)
    def contact_finished(self, member_id: int) -> None:
        self._finished.append(member_id)

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: bool(self._finished))
        return self._finished[0]


async def test_notice_reaches_running_campaign(dev_env, task_queue, sqlite_db):
    activities = CampaignActivities(sqlite_db, dev_env.client)
    notice = CampaignNotice(f"listener-{task_queue}", names.SIGNAL_CONTACT_FINISHED, 7)

    async with Worker(
        dev_env.client, task_queue=task_queue, workflows=[NoticeListener]
    ):
        handle = await dev_env.client.start_workflow(
            NoticeListener.run, id=notice.campaign_workflow_id, task_queue=task_queue
        )
        delivered = await ActivityEnvironment().run(activities.notify_campaign, notice)

        assert delivered is True
        assert await handle.result() == 7


async def test_notice_to_missing_campaign_returns_false(dev_env, task_queue, sqlite_db):
    activities = CampaignActivities(sqlite_db, dev_env.client)
    notice = CampaignNotice(f"absent-{task_queue}", names.SIGNAL_CONTACT_IDLE, 7)

    delivered = await ActivityEnvironment().run(activities.notify_campaign, notice)

    assert delivered is False
