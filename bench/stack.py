"""The engine as separate processes on local ports, as the benchmarks run it.

Temporal's dev server, the simulator, the API and the workers each run in
their own process, bound to 127.0.0.1 on ports picked at run time, like the
embedded stack of ``outbound up``. Every child process gets SIGTERM when the
benchmark process dies (Linux's parent-death signal), so none outlives it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from cli.stack import TEMPORAL_SQLITE_PRAGMAS
from store.db import Database
from telephony.scenario import Scenario
from telephony.simulator import Faults
from telephony.simulator.config import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from workflows import names

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
BIN_DIR = Path(sys.executable).parent
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
POSTGRES_URL_VARIABLE = "OUTBOUND_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# prctl(2) option that sends a signal to this process when its parent dies.
# The function is looked up here, so the forked child only calls it.
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a child process that logs to ``log_path`` and dies with us."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Runs in the child between fork and exec; it only calls prctl(2).
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )


def stop_process(process: subprocess.Popen) -> None:
    """Stop a child with SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("process %s did not stop in time; killing it", process.pid)
        process.kill()
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    """Wait until ``port`` accepts connections; raise if ``process`` exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((LOCALHOST, port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not open port {port} in time")
        time.sleep(0.1)


@asynccontextmanager
async def dev_server(
    extra_args: list[str] | None = None,
    database_file: Path | None = None,
) -> AsyncIterator[WorkflowEnvironment]:
    """Run Temporal's dev server with the engine's search attributes.

    Its state is in memory unless ``database_file`` names a SQLite file, as
    the embedded stack's is. In memory, every closed workflow stays in RAM:
    a 100,000-contact campaign filled 22 GiB after 66,000 contacts.
    """
    args = list(extra_args or [])
    if database_file is not None:
        for pragma in TEMPORAL_SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
    env = await WorkflowEnvironment.start_local(
        dev_server_database_filename=str(database_file) if database_file else None,
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        search_attributes=names.SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=args,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@contextmanager
def bench_database(kind: str, data_dir: Path) -> Iterator[Database]:
    """Create a migrated, empty database: a SQLite file or a PostgreSQL schema.

    PostgreSQL is reached at $OUTBOUND_BENCH_POSTGRES_URL, or at the local
    server that CI uses; the schema is dropped afterwards.
    """
    if kind == "sqlite":
        database = Database(f"sqlite:///{data_dir / 'outbound.db'}")
        database.migrate()
        try:
            yield database
        finally:
            database.dispose()
        return
    if kind != "postgresql":
        raise ValueError(f"database must be sqlite or postgresql, not {kind!r}")
    yield from _postgres_schema(
        os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)
    )


def _postgres_schema(url: str) -> Iterator[Database]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    database = Database(f"{url}{separator}options=-csearch_path%3D{schema}")
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class EngineOptions:
    """Settings of the engine's processes for one benchmark."""

    scenario: Scenario
    faults: Faults = field(default_factory=Faults)
    plan_line_limit: int = 1_000
    calls_per_second: float = 10_000.0
    line_lease_seconds: int = 3_600
    workers: int = 1


class EngineProcesses:
    """The simulator, the API and the workers, each in its own process."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        db: Database,
        data_dir: Path,
        options: EngineOptions,
    ) -> None:
        self.options = options
        self.db = db
        self.data_dir = data_dir
        self.api_key = secrets.token_urlsafe(16)
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.workflow_id_prefix = f"{self.task_queue}-"
        self.temporal_address = env.client.service_client.config.target_host
        self.simulator_url = ""
        self.api_url = ""
        self.simulator: subprocess.Popen | None = None
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def __enter__(self) -> Self:
        try:
            self._start_simulator()
            self._start_api()
            for _ in range(self.options.workers):
                self.start_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for process in [*self.workers, self.api, self.simulator]:
            if process is not None:
                stop_process(process)

    def check_running(self) -> None:
        """Raise RuntimeError naming a process of the engine that has ended."""
        named = [("the simulator", self.simulator, "simulator.log")]
        named.append(("the API", self.api, "api.log"))
        named += [
            (f"worker {index}", process, f"worker-{index}.log")
            for index, process in enumerate(self.workers)
        ]
        for name, process, log in named:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; "
                    f"see {self.data_dir / log}"
                )

    def environment(self) -> dict[str, str]:
        """Build the environment the API and the workers run with."""
        env = dict(os.environ)
        env.update(
            {
                "OUTBOUND_DATA_DIR": str(self.data_dir),
                "OUTBOUND_DATABASE_URL": self.db.url,
                "OUTBOUND_TEMPORAL_ADDRESS": self.temporal_address,
                "OUTBOUND_TASK_QUEUE": self.task_queue,
                "OUTBOUND_WORKFLOW_ID_PREFIX": self.workflow_id_prefix,
                "OUTBOUND_API_KEY": self.api_key,
                "OUTBOUND_PUBLIC_BASE_URL": self.api_url,
                "OUTBOUND_TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
                "OUTBOUND_TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
                "OUTBOUND_TELEPHONY_API_URL": self.simulator_url,
                "OUTBOUND_PLAN_LINE_LIMIT": str(self.options.plan_line_limit),
                "OUTBOUND_CALLS_PER_SECOND": str(self.options.calls_per_second),
                "OUTBOUND_LINE_LEASE_SECONDS": str(self.options.line_lease_seconds),
                "OUTBOUND_LOG_LEVEL": "WARNING",
            }
        )
        return env

    def start_worker(self) -> subprocess.Popen:
        """Start one more ``python -m worker`` on the task queue."""
        index = len(self.workers)
        process = spawn(
            [sys.executable, "-m", "worker"],
            self.environment(),
            self.data_dir / f"worker-{index}.log",
        )
        self.workers.append(process)
        return process

    def simulator_stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.simulator_url}/_sim/stats", timeout=30)
        response.raise_for_status()
        return response.json()

    def _start_simulator(self) -> None:
        port = free_port()
        scenario_path = self.data_dir / "scenario.json"
        scenario_path.write_text(json.dumps(self.options.scenario.to_dict()))
        faults_path = self.data_dir / "faults.json"
        faults_path.write_text(json.dumps(self.options.faults.to_dict()))
        command = [sys.executable, "-m", "telephony.simulator", "--host", LOCALHOST]
        command += ["--port", str(port), "--scenario", str(scenario_path)]
        command += ["--faults", str(faults_path)]
        self.simulator = spawn(
            command, dict(os.environ), self.data_dir / "simulator.log"
        )
        wait_for_port(port, self.simulator, "the simulator")
        self.simulator_url = f"http://{LOCALHOST}:{port}"

    def _start_api(self) -> None:
        port = free_port()
        self.api_url = f"http://{LOCALHOST}:{port}"
        command = [sys.executable, "-m", "uvicorn", "api.app:app_from_environment"]
        command += ["--factory", "--host", LOCALHOST, "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
        self.api = spawn(command, self.environment(), self.data_dir / "api.log")
        wait_for_port(port, self.api, "the API")
