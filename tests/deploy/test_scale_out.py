"""Two API processes and two worker processes share one Temporal and PostgreSQL.

Each API and worker is a real process started the way production starts it
(``uvicorn api.app:app_from_environment --factory`` and ``python -m worker``),
with settings only from OUTBOUND_* variables. Temporal is the suite's dev
server, the database a fresh PostgreSQL schema, and calls go to the simulator
in this process. The simulator's callbacks reach the first API; management
requests alternate between both.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from activities.types import FINAL_MEMBER_STATES
from cli.admin import find_worker_problems, metrics_url
from store.db import Database
from store.models import CallAttempt, CampaignMember
from telephony.scenario import Scenario
from telephony.simulator import SimulatorConfig
from telephony.testing import SimulatorServer
from tests.conftest import POSTGRES_URL_VARIABLE, _postgres_database, eventually
from tests.e2e.test_campaign_end_to_end import SEQUENCES, expected_attempts
from tests.engine import AGENT_NUMBER, open_numbers

pytestmark = pytest.mark.postgres

API_KEY = "scale-out-api-key"
CONTACTS = 20
MAX_ATTEMPTS = 3
CAMPAIGN_SETTINGS = {
    "window_start": "08:00",
    "window_end": "21:00",
    "window_days": [1, 2, 3, 4, 5, 6, 7],
    "require_consent": False,
    "retry_delay_seconds": 1,
}
STARTUP_TIMEOUT = 60.0
CAMPAIGN_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0
# Calls in the second test last long enough (a person talks 90 s x 0.02) that
# the campaign is still running when a worker is stopped.
SLOW_TIME_SCALE = 0.02
CALLS_BEFORE_STOP = 6


class ProcessExited(RuntimeError):
    """Raised when an API or worker process ends while the test needs it."""


@dataclass
class Child:
    """An API or worker process with the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ProcessExited(
                f"{self.name} exited with status {code}:\n{self.log_tail()}"
            )

    def stop(self) -> int:
        """Send SIGTERM and wait, killing the process if it outlives STOP_TIMEOUT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Deployment:
    apis: list[httpx.AsyncClient]
    workers: list[Child]
    simulator: SimulatorServer
    task_queue: str
    # The processes that must stay up. A worker stopped on purpose leaves it.
    running: list[Child]
    _turn: int = field(default=0)

    def next_api(self) -> httpx.AsyncClient:
        """Return the APIs in turn, so management requests alternate."""
        for child in self.running:
            child.check_running()
        api = self.apis[self._turn % len(self.apis)]
        self._turn += 1
        return api

    async def stop_worker(self, index: int) -> int:
        """Send SIGTERM to a worker and return its exit status."""
        child = self.workers[index]
        self.running.remove(child)
        return await asyncio.to_thread(child.stop)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.next_api().request(method, path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.text}"
        return response.json()

    async def import_contacts(self, numbers: list[str]) -> int:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["phone", "name"])
        writer.writerows([number, f"contact {i}"] for i, number in enumerate(numbers))
        report = await self.request(
            "POST",
            "/contacts/import",
            files={"file": ("contacts.csv", buffer.getvalue().encode(), "text/csv")},
        )
        assert report["rejected"] == []
        return report["import_id"]

    async def start_campaign(self, import_id: int) -> int:
        agent = await self.request(
            "POST",
            "/agents",
            json={
                "name": "Scale-out agent",
                "from_number": AGENT_NUMBER,
                "voice_url": f"{self.simulator.url}/agent/voice",
            },
        )
        campaign = await self.request(
            "POST",
            "/campaigns",
            json={
                "name": "scale-out campaign",
                "agent_id": agent["id"],
                "contacts": {"import_id": import_id},
                "settings": CAMPAIGN_SETTINGS,
            },
        )
        await self.request("POST", f"/campaigns/{campaign['id']}/start")
        return campaign["id"]

    async def campaign(self, campaign_id: int) -> dict[str, Any]:
        return await self.request("GET", f"/campaigns/{campaign_id}")

    async def finished(self, campaign_id: int) -> dict[str, Any] | None:
        campaign = await self.campaign(campaign_id)
        return campaign if campaign["status"] == "finished" else None


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"PostgreSQL not configured: set {POSTGRES_URL_VARIABLE} to run the "
            "scale-out tests"
        )
    yield from _postgres_database(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_test() -> list[str]:
    """Return a command prefix that stops the child when this process ends."""
    setpriv = shutil.which("setpriv")
    # Linux sends the parent-death signal even when pytest itself is killed,
    # so no child outlives the test run.
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def spawn(name: str, command: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*die_with_test(), *command],
            env=env,
            cwd=logs,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Child(name=name, process=process, log=log, env=env)


def deployment_environment(
    env: WorkflowEnvironment,
    db: Database,
    simulator: SimulatorServer,
    public_base_url: str,
) -> dict[str, str]:
    """Return the OUTBOUND_* settings every process of one deployment shares."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    test_id = uuid.uuid4().hex[:8]
    variables.update(
        {
            "OUTBOUND_DATABASE_URL": db.url,
            "OUTBOUND_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "OUTBOUND_TEMPORAL_NAMESPACE": env.client.namespace,
            "OUTBOUND_TASK_QUEUE": f"scale-out-{test_id}",
            "OUTBOUND_WORKFLOW_ID_PREFIX": f"scale-{test_id}-",
            "OUTBOUND_API_KEY": API_KEY,
            "OUTBOUND_PUBLIC_BASE_URL": public_base_url,
            "OUTBOUND_TWILIO_ACCOUNT_SID": simulator.config.account_sid,
            "OUTBOUND_TWILIO_AUTH_TOKEN": simulator.config.auth_token,
            "OUTBOUND_TELEPHONY_API_URL": simulator.url,
            # The simulator takes creates faster than a new Twilio account.
            "OUTBOUND_CALLS_PER_SECOND": "100",
            "OUTBOUND_LOG_LEVEL": "INFO",
        }
    )
    return variables


def api_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


async def wait_for_api(client: httpx.AsyncClient, child: Child) -> None:
    async def healthy() -> bool:
        child.check_running()
        try:
            response = await client.get("/health")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    await eventually(healthy, timeout=STARTUP_TIMEOUT, interval=0.2)


async def wait_for_worker(child: Child, task_queue: str) -> None:
    """Wait until the worker's metrics show it polling, as its healthcheck does."""
    url = metrics_url(child.env["OUTBOUND_METRICS_BIND_ADDRESS"])

    async def polling() -> bool:
        child.check_running()
        async with httpx.AsyncClient() as client:
            try:
                response = await client.get(url)
            except httpx.TransportError:
                return False
        return find_worker_problems(response.text, task_queue) == []

    await eventually(polling, timeout=STARTUP_TIMEOUT, interval=0.2)


def run_worker_healthcheck(child: Child) -> subprocess.CompletedProcess[str]:
    """Run the compose file's worker healthcheck with the worker's settings."""
    return subprocess.run(
        [sys.executable, "-m", "cli.admin", "check-worker"],
        env=child.env,
        cwd=child.log.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def worker_pids_in_histories(
    env: WorkflowEnvironment, task_queue: str
) -> set[int]:
    """Return the process ids of the workers that ran tasks on ``task_queue``."""
    identities: set[str] = set()
    async for execution in env.client.list_workflows(f"TaskQueue = '{task_queue}'"):
        handle = env.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_started_event_attributes"):
                identities.add(event.activity_task_started_event_attributes.identity)
            if event.HasField("workflow_task_started_event_attributes"):
                identities.add(event.workflow_task_started_event_attributes.identity)
    # The SDK's default identity is "<pid>@<host>".
    return {int(identity.split("@", 1)[0]) for identity in identities if identity}


@asynccontextmanager
async def running_deployment(
    env: WorkflowEnvironment, db: Database, scenario: Scenario, logs: Path
) -> AsyncIterator[Deployment]:
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    children: list[Child] = []
    async with AsyncExitStack() as stack:
        simulator = stack.enter_context(
            SimulatorServer(SimulatorConfig(scenario=scenario))
        )
        variables = deployment_environment(env, db, simulator, urls[0])
        try:
            apis = [
                spawn(f"api-{i}", api_command(p), variables, logs)
                for i, p in enumerate(ports)
            ]
            children += apis
            workers = [
                spawn(
                    f"worker-{i}",
                    [sys.executable, "-m", "worker"],
                    {
                        **variables,
                        "OUTBOUND_METRICS_BIND_ADDRESS": f"127.0.0.1:{free_port()}",
                    },
                    logs,
                )
                for i in range(2)
            ]
            children += workers
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=url, headers={"X-API-Key": API_KEY}, timeout=30
                    )
                )
                for url in urls
            ]
            for client, child in zip(clients, apis, strict=True):
                await wait_for_api(client, child)
            for child in workers:
                await wait_for_worker(child, variables["OUTBOUND_TASK_QUEUE"])
            yield Deployment(
                apis=clients,
                workers=workers,
                simulator=simulator,
                task_queue=variables["OUTBOUND_TASK_QUEUE"],
                running=list(children),
            )
        finally:
            for child in reversed(children):
                child.stop()


def recorded_attempts(db: Database) -> list[CallAttempt]:
    with db.session() as session:
        return list(session.exec(select(CallAttempt).order_by(CallAttempt.id)).all())


def recorded_members(db: Database) -> list[CampaignMember]:
    with db.session() as session:
        return list(session.exec(select(CampaignMember)).all())


def outcomes_by_number(attempts: list[CallAttempt]) -> dict[str, list[str | None]]:
    outcomes: dict[str, list[str | None]] = {}
    for attempt in sorted(attempts, key=lambda a: (a.phone, a.attempt_no)):
        outcomes.setdefault(attempt.phone, []).append(attempt.outcome)
    return outcomes


def make_scenario(numbers: list[str], time_scale: float) -> Scenario:
    return Scenario(
        numbers={n: SEQUENCES[i % len(SEQUENCES)] for i, n in enumerate(numbers)},
        time_scale=time_scale,
    )


async def test_scale_out_campaign_matches_scenario(dev_env, postgres_db, tmp_path):
    numbers = open_numbers(CONTACTS)
    scenario = make_scenario(numbers, time_scale=0.001)
    expected = {n: expected_attempts(scenario, n, MAX_ATTEMPTS) for n in numbers}

    async with running_deployment(
        dev_env, postgres_db, scenario, tmp_path
    ) as deployment:
        import_id = await deployment.import_contacts(numbers)
        campaign_id = await deployment.start_campaign(import_id)
        campaign = await eventually(
            lambda: deployment.finished(campaign_id), timeout=CAMPAIGN_TIMEOUT
        )
        creates = deployment.simulator.stats()["creates_by_number"]
        pids = await worker_pids_in_histories(dev_env, deployment.task_queue)

    attempts = recorded_attempts(postgres_db)
    all_expected = Counter(o for outcomes in expected.values() for o in outcomes)
    assert outcomes_by_number(attempts) == expected
    assert campaign["calls_by_outcome"] == dict(all_expected)
    assert creates == {n: len(outcomes) for n, outcomes in expected.items()}
    assert pids == {child.process.pid for child in deployment.workers}


async def test_scale_out_survives_worker_stop(dev_env, postgres_db, tmp_path):
    numbers = open_numbers(CONTACTS, start=400)
    scenario = make_scenario(numbers, time_scale=SLOW_TIME_SCALE)
    expected = {n: expected_attempts(scenario, n, MAX_ATTEMPTS) for n in numbers}

    async with running_deployment(
        dev_env, postgres_db, scenario, tmp_path
    ) as deployment:
        import_id = await deployment.import_contacts(numbers)
        campaign_id = await deployment.start_campaign(import_id)
        await eventually(
            lambda: deployment.simulator.stats()["calls_created"] >= CALLS_BEFORE_STOP,
            timeout=CAMPAIGN_TIMEOUT,
        )
        running_at_stop = (await deployment.campaign(campaign_id))["status"]
        exit_status = await deployment.stop_worker(0)
        created_at_stop = deployment.simulator.stats()["calls_created"]
        stopped_health = await asyncio.to_thread(
            run_worker_healthcheck, deployment.workers[0]
        )
        running_health = await asyncio.to_thread(
            run_worker_healthcheck, deployment.workers[1]
        )
        await eventually(
            lambda: deployment.finished(campaign_id), timeout=CAMPAIGN_TIMEOUT
        )
        deployment.workers[1].check_running()
        stats = deployment.simulator.stats()
        pids = await worker_pids_in_histories(dev_env, deployment.task_queue)

    attempts = recorded_attempts(postgres_db)
    per_attempt = Counter((a.member_id, a.attempt_no) for a in attempts)
    per_number = Counter(a.phone for a in attempts)
    states = {member.state for member in recorded_members(postgres_db)}
    assert running_at_stop == "running"
    # TODO(worker): the Temporal SDK can abort the interpreter while it
    # finalizes (SIGABRT), so only a kill after the timeout counts as failure.
    assert exit_status != -signal.SIGKILL, deployment.workers[0].log_tail()
    assert stopped_health.returncode == 1, stopped_health.stderr
    assert running_health.returncode == 0, running_health.stderr
    assert stats["calls_created"] > created_at_stop
    assert states <= FINAL_MEMBER_STATES
    assert [key for key, count in per_attempt.items() if count > 1] == []
    assert stats["creates_by_number"] == dict(per_number)
    assert outcomes_by_number(attempts) == expected
    assert pids == {child.process.pid for child in deployment.workers}
