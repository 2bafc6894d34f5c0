"""A bare Temporal parent/child/activity run, the yardstick for the engine.

A parent workflow starts one child per item and each child runs one activity
that does nothing. It pages and caps its children the way CampaignWorkflow
does (pages of 100 started together, at most 300 in flight), and its worker
has the same activity threads as the engine's, so the ratio of the two rates
shows what the engine's own work costs on top of Temporal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

PAGE_SIZE = 100
MAX_IN_FLIGHT = 300
ACTIVITY_THREADS = 100
ACTIVITY_TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class BaselineInput:
    items: int
    child_id_prefix: str


@activity.defn(name="baseline_noop")
def noop(item: int) -> int:
    return item


@workflow.defn(name="BaselineChildWorkflow")
class BaselineChildWorkflow:
    @workflow.run
    async def run(self, item: int) -> int:
        return await workflow.execute_activity(
            noop, item, start_to_close_timeout=ACTIVITY_TIMEOUT
        )


@workflow.defn(name="BaselineParentWorkflow")
class BaselineParentWorkflow:
    def __init__(self) -> None:
        self._in_flight = 0

    @workflow.run
    async def run(self, input: BaselineInput) -> int:
        children = []
        for first in range(0, input.items, PAGE_SIZE):
            page = range(first, min(first + PAGE_SIZE, input.items))
            await workflow.wait_condition(
                lambda: self._in_flight <= MAX_IN_FLIGHT - PAGE_SIZE
            )
            self._in_flight += len(page)
            # Tasks created in one activation start their children in the
            # same workflow task, as asyncio.gather does in the engine.
            children += [
                asyncio.create_task(self._child(input.child_id_prefix, item))
                for item in page
            ]
        await asyncio.gather(*children)
        return len(children)

    async def _child(self, prefix: str, item: int) -> None:
        try:
            await workflow.execute_child_workflow(
                BaselineChildWorkflow.run, item, id=f"{prefix}{item}"
            )
        finally:
            self._in_flight -= 1


async def run_baseline(client: Client, items: int, *, timeout: float) -> float:
    """Run the baseline for ``items`` children; return the seconds it took."""
    task_queue = f"baseline-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[BaselineParentWorkflow, BaselineChildWorkflow],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=ACTIVITY_THREADS,
        )
        async with worker:
            started = time.monotonic()
            done = await asyncio.wait_for(
                client.execute_workflow(
                    BaselineParentWorkflow.run,
                    BaselineInput(items=items, child_id_prefix=f"{task_queue}/item-"),
                    id=task_queue,
                    task_queue=task_queue,
                ),
                timeout,
            )
            seconds = time.monotonic() - started
    if done != items:
        raise RuntimeError(f"the baseline ran {done} children, expected {items}")
    return seconds
