"""The embedded stack: Temporal's dev server, the simulator, the API and a worker.

Every piece keeps its state under one data directory, so stopping and starting
the stack loses nothing: Temporal's timers live in its SQLite file, the
project's data in another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from workflows import names

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
SIMULATOR_CALLS_PER_SECOND = 20
# Temporal's SQLite file keeps a write-ahead log and syncs it at checkpoints,
# not at every commit: campaigns ran 2.6 times as fast here. A crashed server
# loses nothing, and a power cut can lose the last commits but not the file.
TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


class StackError(RuntimeError):
    """Raised when a part of the embedded stack cannot start."""


@dataclass(frozen=True)
class StackPorts:
    temporal: int = 7233
    ui: int = 8233
    api: int = 8000
    simulator: int = 8077


@dataclass(frozen=True)
class StackSecrets:
    api_key: str
    account_sid: str
    auth_token: str


def load_secrets(data_dir: Path) -> StackSecrets:
    """Read the stack's generated keys, creating them on first use."""
    path = data_dir / "secrets.json"
    if path.exists():
        return StackSecrets(**json.loads(path.read_text()))
    data_dir.mkdir(parents=True, exist_ok=True)
    created = StackSecrets(
        api_key=secrets.token_urlsafe(24),
        account_sid="AC" + secrets.token_hex(16),
        auth_token=secrets.token_hex(16),
    )
    path.write_text(json.dumps(created.__dict__))
    path.chmod(0o600)
    return created


def load_ports(data_dir: Path) -> StackPorts:
    """Return the ports the stack in this directory last started on."""
    path = data_dir / "ports.json"
    if path.exists():
        return StackPorts(**json.loads(path.read_text()))
    return StackPorts()


def find_binary(name: str) -> str:
    """Find a binary installed beside this Python (the venv) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found beside {sys.executable} or on PATH")
    return found


def _wait_for_exit(pids: dict[str, int], timeout: float) -> None:
    """Wait until every process has exited, and kill those left at the timeout."""
    deadline = time.monotonic() + timeout
    left = dict(pids)
    while left and time.monotonic() < deadline:
        left = {name: pid for name, pid in left.items() if _alive(pid)}
        if left:
            time.sleep(0.2)
    for name, pid in left.items():
        logger.warning("%s did not stop in time; killing it", name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Tell whether a process runs, reaping it first if it is our child."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class EmbeddedStack:
    def __init__(
        self,
        data_dir: Path,
        ports: StackPorts | None = None,
        scenario: Path | None = None,
        plan_line_limit: int = 10,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.ports = ports or load_ports(self.data_dir)
        self.scenario = scenario
        self.plan_line_limit = plan_line_limit
        self.secrets = load_secrets(self.data_dir)
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ports.ui}"

    def environment(self) -> dict[str, str]:
        """The settings every process of the stack runs with."""
        env = dict(os.environ)
        env.update(
            {
                "OUTBOUND_DATA_DIR": str(self.data_dir),
                "OUTBOUND_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports.temporal}",
                "OUTBOUND_API_KEY": self.secrets.api_key,
                "OUTBOUND_PUBLIC_BASE_URL": self.api_url,
                "OUTBOUND_TWILIO_ACCOUNT_SID": self.secrets.account_sid,
                "OUTBOUND_TWILIO_AUTH_TOKEN": self.secrets.auth_token,
                "OUTBOUND_TELEPHONY_API_URL": f"http://127.0.0.1:{self.ports.simulator}",
                "OUTBOUND_PLAN_LINE_LIMIT": str(self.plan_line_limit),
                # The simulator reads its token here rather than from its
                # command line, where `ps` would show it.
                "OUTBOUND_SIMULATOR_AUTH_TOKEN": self.secrets.auth_token,
                # The simulator takes creates faster than a new Twilio account.
                "OUTBOUND_CALLS_PER_SECOND": str(SIMULATOR_CALLS_PER_SECOND),
            }
        )
        env.pop("OUTBOUND_DATABASE_URL", None)
        return env

    def is_running(self) -> bool:
        """Tell whether an API of this stack answers with this stack's key."""
        try:
            response = httpx.get(
                f"{self.api_url}/campaigns",
                headers={"X-API-Key": self.secrets.api_key},
                timeout=2.0,
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def start_unless_running(
        self, wait_seconds: float = STARTUP_TIMEOUT_SECONDS
    ) -> bool:
        """Start the stack unless its API responds, and return True if started here.

        A command that finds another one starting the stack in this directory
        waits up to ``wait_seconds`` for it, then uses that stack.
        """
        with self._start_lock(wait_seconds):
            if self.is_running():
                return False
            self.start()
            return True

    @contextmanager
    def _start_lock(self, wait_seconds: float) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_seconds
        with open(self.data_dir / "stack.lock", "w") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StackError(
                            f"another command is still starting the stack for "
                            f"{self.data_dir} after {wait_seconds:g} s; see "
                            f"{self.data_dir / 'logs'}, then try again"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self) -> None:
        """Start every process and wait until each answers."""
        self._check_free()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "ports.json").write_text(json.dumps(self.ports.__dict__))
        env = self.environment()
        self._migrate(env)
        self._spawn("temporal", self._temporal_command(), env)
        self._wait_for_port(self.ports.temporal, "Temporal")
        self._spawn("simulator", self._simulator_command(), env)
        self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:app_from_environment",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.api),
                "--log-level",
                "warning",
            ],
            env,
        )
        self._spawn("worker", [sys.executable, "-m", "worker"], env)
        self._write_pids()
        self._wait_for_port(self.ports.simulator, "the simulator")
        self._wait_until(self.is_running, "the API")

    def running_pids(self) -> dict[str, int]:
        """Processes of a stack started from this data directory and still alive."""
        path = self.data_dir / "stack.json"
        if not path.exists():
            return {}
        alive = {}
        for name, pid in json.loads(path.read_text()).items():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            alive[name] = pid
        return alive

    def _check_free(self) -> None:
        """Raise StackError if this directory's stack or a port is in use."""
        running = self.running_pids()
        if running:
            raise StackError(
                f"a stack is already running for {self.data_dir} (processes "
                f"{sorted(running.values())}): use it, or stop it with "
                f"`outbound down --data-dir {self.data_dir}`"
            )
        for name, port in self.ports.__dict__.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    option = f"--{name.replace('_', '-')}-port"
                    raise StackError(
                        f"port {port} for {name} is already in use: stop what "
                        f"uses it, or choose another with {option}"
                    ) from None

    def _write_pids(self) -> None:
        pids = {name: process.pid for name, process in self._processes}
        (self.data_dir / "stack.json").write_text(json.dumps(pids))

    def stop(self) -> None:
        """Stop the processes in reverse order, each with SIGTERM first."""
        for name, process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not stop in time; killing it", name)
                    process.kill()
                    process.wait()
        if self._processes and self._owns_pid_file():
            (self.data_dir / "stack.json").unlink(missing_ok=True)
        self._processes.clear()

    def _owns_pid_file(self) -> bool:
        """Tell whether stack.json lists this object's processes, not another
        command's."""
        path = self.data_dir / "stack.json"
        if not path.exists():
            return False
        ours = {process.pid for _, process in self._processes}
        return set(json.loads(path.read_text()).values()) <= ours

    def detach(self) -> None:
        """Leave the processes running after this program exits."""
        self._write_pids()
        self._processes.clear()

    def stop_detached(self) -> int:
        """Stop the processes listed in stack.json, wait until they exit, and
        return how many were running."""
        path = self.data_dir / "stack.json"
        if not path.exists():
            return 0
        pids = json.loads(path.read_text())
        stopping = {}
        for name in reversed(list(pids)):
            try:
                os.kill(pids[name], signal.SIGTERM)
                stopping[name] = pids[name]
            except ProcessLookupError:
                logger.debug("%s was no longer running", name)
        _wait_for_exit(stopping, STOP_TIMEOUT_SECONDS)
        path.unlink(missing_ok=True)
        return len(stopping)

    def failed_process(self) -> str | None:
        """Name a process of the stack that has exited, if any."""
        for name, process in self._processes:
            if process.poll() is not None:
                return name
        return None

    def _temporal_command(self) -> list[str]:
        command = [
            find_binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.ports.temporal),
            "--ui-port",
            str(self.ports.ui),
            "--log-level",
            "error",
        ]
        for pragma in TEMPORAL_SQLITE_PRAGMAS:
            command += ["--sqlite-pragma", pragma]
        for key in names.SEARCH_ATTRIBUTES:
            command += ["--search-attribute", f"{key.name}=Keyword"]
        return command

    def _simulator_command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "telephony.simulator",
            "--port",
            str(self.ports.simulator),
            "--account-sid",
            self.secrets.account_sid,
        ]
        if self.scenario is not None:
            command += ["--scenario", str(self.scenario)]
        return command

    def _migrate(self, env: dict[str, str]) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "store.migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"database migration failed:\n{result.stderr[-2000:]}")

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append((name, process))

    def _wait_for_port(self, port: int, what: str) -> None:
        def open_port() -> bool:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        self._wait_until(open_port, what)

    def _wait_until(self, ready, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not ready():
            failed = self.failed_process()
            if failed is not None:
                self.stop()
                raise StackError(
                    f"{failed} exited during start-up; see "
                    f"{self.data_dir / 'logs' / (failed + '.log')}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(
                    f"{what} did not start within {STARTUP_TIMEOUT_SECONDS:.0f} s; "
                    f"see the logs in {self.data_dir / 'logs'}"
                )
            time.sleep(0.2)
