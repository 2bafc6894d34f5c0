"""Helpers for tests of the engine at scale: worker processes, leases, runs."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import func
from sqlmodel import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from store.db import Database
from store.models import LineLease, utcnow
from tests.engine import Engine

STOP_TIMEOUT_SECONDS = 30.0
# prctl(2) option that signals this process when its parent dies, so that no
# worker outlives a test run that was killed. The function is looked up here,
# so the forked child only calls it.
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_environment(
    engine: Engine, temporal_address: str, **settings: str
) -> dict[str, str]:
    """The environment of a ``python -m worker`` that joins this engine.

    ``settings`` are more OUTBOUND_ variables, named without the prefix, such
    as ``plan_line_limit="3"``.
    """
    own = engine.settings
    env = dict(os.environ)
    env.update(
        {
            "OUTBOUND_TEMPORAL_ADDRESS": temporal_address,
            "OUTBOUND_DATABASE_URL": engine.db.url,
            "OUTBOUND_TASK_QUEUE": own.task_queue,
            "OUTBOUND_WORKFLOW_ID_PREFIX": own.workflow_id_prefix,
            "OUTBOUND_PUBLIC_BASE_URL": own.public_base_url,
            "OUTBOUND_TWILIO_ACCOUNT_SID": own.twilio_account_sid or "",
            "OUTBOUND_TWILIO_AUTH_TOKEN": own.twilio_auth_token or "",
            "OUTBOUND_TELEPHONY_API_URL": own.telephony_api_url or "",
            "OUTBOUND_CALLS_PER_SECOND": str(own.calls_per_second),
            "OUTBOUND_LOG_LEVEL": "WARNING",
        }
    )
    env.update({f"OUTBOUND_{name.upper()}": value for name, value in settings.items()})
    return env


class WorkerProcess:
    """A ``python -m worker`` subprocess, stopped when the block ends."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Runs in the child between fork and exec; it only calls prctl(2).
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """End the worker at once with SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")


async def activity_pollers(client: Client, task_queue: str) -> int:
    """How many workers poll the task queue for activities."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return len(response.pollers)


def leases_by_campaign(db: Database) -> dict[int, int]:
    """Lines held now, by campaign, from the unexpired line leases."""
    with db.session() as session:
        rows = session.exec(
            select(LineLease.campaign_id, func.count())
            .where(LineLease.expires_at > utcnow())
            .group_by(LineLease.campaign_id)
        ).all()
    return dict(rows)


async def contact_workflow_runs(
    client: Client, campaign_workflow_id: str
) -> Counter[str]:
    """Runs of each contact workflow of a campaign, by workflow id.

    A run that continued as new is left out, so a count above one means the
    contact was started again.
    """
    query = (
        f'WorkflowId STARTS_WITH "{campaign_workflow_id}/" '
        'AND ExecutionStatus != "ContinuedAsNew"'
    )
    return Counter([execution.id async for execution in client.list_workflows(query)])


async def campaign_runs(client: Client, campaign_workflow_id: str) -> int:
    """How many runs the campaign's workflow has had (continue-as-new adds one)."""
    query = f'WorkflowId = "{campaign_workflow_id}"'
    return len([execution async for execution in client.list_workflows(query)])
