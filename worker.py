"""The worker process: runs the workflows and activities of Outbound."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.calls import CallActivities, CallConfig
from activities.campaign import CampaignActivities
from config import Settings, SettingsError, get_settings
from store.db import Database
from store.models import utcnow
from telephony.provider import TelephonyProvider
from workflows.campaign import CampaignWorkflow
from workflows.client import connect_temporal
from workflows.contact import ContactWorkflow

logger = logging.getLogger(__name__)

# Activities are synchronous (database and Twilio SDK calls), so they run in
# threads; a contact waiting for a line holds one thread while it polls.
ACTIVITY_THREADS = 100
# On SIGTERM, running activities get this long to finish before the worker
# hands them back to Temporal for another worker to retry.
SHUTDOWN_GRACE = timedelta(seconds=20)


def make_provider(settings: Settings) -> TelephonyProvider:
    settings.require_telephony()
    assert settings.twilio_account_sid and settings.twilio_auth_token
    return TelephonyProvider(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        api_url=settings.telephony_api_url,
    )


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    provider: TelephonyProvider,
    executor: ThreadPoolExecutor,
    *,
    clock: Callable[[], datetime] = utcnow,
    sandboxed: bool = False,
) -> Worker:
    """Build the worker; ``sandboxed`` runs the workflows in Temporal's sandbox.

    The sandbox imports a workflow's module again for every run. In a py-spy
    profile of the worker during `python -m bench.throughput` that took about
    a sixth of its CPU, so the production worker runs without it. The tests
    run the same workflows inside it, so code the sandbox forbids fails there.
    """
    calls = CallActivities(
        db,
        provider,
        CallConfig(
            public_base_url=settings.public_base_url,
            plan_line_limit=settings.plan_line_limit,
            line_lease=timedelta(seconds=settings.line_lease_seconds),
            calls_per_second=settings.calls_per_second,
        ),
        clock=clock,
    )
    campaign = CampaignActivities(db, client)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[CampaignWorkflow, ContactWorkflow],
        workflow_runner=SandboxedWorkflowRunner()
        if sandboxed
        else UnsandboxedWorkflowRunner(),
        activities=[
            calls.place_call,
            calls.finish_attempt,
            campaign.list_members,
            campaign.count_unfinished,
            campaign.final_among,
            campaign.set_campaign_status,
            campaign.wake_members,
            campaign.notify_campaign,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set, or until SIGTERM or SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            break
    client = await connect_temporal(settings, with_metrics=True)
    db = Database(settings.sqlalchemy_url)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings, db, make_provider(settings), executor)
        async with worker:
            logger.info(
                "Worker started on task queue %s at %s",
                settings.task_queue,
                settings.temporal_address,
            )
            await stop.wait()
            logger.info("Worker stopping; running activities get %s", SHUTDOWN_GRACE)
    db.dispose()
    logger.info("Worker stopped")


def main() -> None:
    from cli.logs import configure_logging

    try:
        settings = get_settings()
        # Checked before connecting, so that missing credentials fail at once.
        make_provider(settings)
    except SettingsError as error:
        # One line that names the variable; a traceback would bury it.
        sys.exit(f"worker cannot start: {error}")
    configure_logging(settings)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
