"""`outbound run` on the example contacts, as a user runs it, on free ports."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from cli.durations import format_duration, parse_duration

ROOT = Path(__file__).resolve().parents[2]
OUTBOUND = Path(sys.executable).parent / "outbound"
RUN_TIMEOUT_SECONDS = 300
# Wide enough that rich and typer do not wrap the messages the tests read.
WIDE = {**os.environ, "COLUMNS": "200"}
# Prints a line once SIGTERM is ignored, then sleeps.
IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_outbound(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    temporal, ui, api, simulator = free_ports(4)
    command = [
        str(OUTBOUND),
        "run",
        *args,
        "--data-dir", str(data_dir),
        "--temporal-port", str(temporal),
        "--ui-port", str(ui),
        "--api-port", str(api),
        "--simulator-port", str(simulator),
        "--no-keep-stack",
    ]  # fmt: skip
    return subprocess.run(  # noqa: PLW1510
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        env=WIDE,
    )


def test_run_example_prints_summary(tmp_path):
    result = run_outbound(
        tmp_path / "state",
        "examples/contacts.csv",
        "--scenario", "examples/scenario.json",
        "--retry-delay", "2s",
        "--window-start", "08:00",
        "--window-end", "21:00",
        "--window-days", "1,2,3,4,5,6,7",
        "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["contacts"] == 22
    assert [row["row"] for row in summary["rejected_rows"]] == [23, 24, 25, 28]
    assert summary["duplicate_rows"] == 1
    assert summary["calls_placed"] >= 1
    assert sum(summary["not_called"].values()) == 2
    assert len(summary["inbox"]["items"]) == min(summary["answered"], 10)
    assert summary["usage"]["ai_calls"] >= summary["answered"]
    finished = sum(
        summary["contacts_by_state"].get(state, 0)
        for state in ("answered", "exhausted", "failed", "not_called", "do_not_call")
    )
    assert finished + summary["waiting_contacts"] == 22
    # Temporal's state file was opened with a write-ahead log.
    with closing(sqlite3.connect(tmp_path / "state" / "temporal.db")) as temporal:
        (journal_mode,) = temporal.execute("PRAGMA journal_mode").fetchone()
    assert journal_mode == "wal"


def test_run_missing_file_fails_clearly(tmp_path):
    result = run_outbound(tmp_path / "state", "no-such-file.csv")

    assert result.returncode == 2
    assert "Contacts file not found: no-such-file.csv" in result.stderr


def test_run_rejects_bad_duration(tmp_path):
    result = run_outbound(
        tmp_path / "state", "examples/contacts.csv", "--retry-delay", "soon"
    )

    assert result.returncode == 2
    assert "invalid duration 'soon'" in result.stderr


def test_run_duration_bound_in_units(tmp_path):
    result = run_outbound(
        tmp_path / "state", "examples/contacts.csv", "--retry-delay", "400d"
    )

    assert result.returncode == 2
    assert "--retry-delay: must be at most 30d" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read"), ('{"rates": {"human": -1}}', "rates must not be negative")],
    ids=["missing", "invalid"],
)
def test_run_bad_scenario_starts_nothing(tmp_path, content, expected):
    scenario = tmp_path / "scenario.json"
    if content is not None:
        scenario.write_text(content)

    result = run_outbound(
        tmp_path / "state", "examples/contacts.csv", "--scenario", str(scenario)
    )

    assert result.returncode == 2
    assert f"--scenario: {expected}" in result.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("4h", 14400), ("5s", 5), ("1h30m", 5400), ("90", 90)]
)
def test_duration_parsed(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_round_trips():
    assert format_duration(parse_duration("2d3h4m5s")) == "2d3h4m5s"


def test_run_rejects_port_out_of_range(tmp_path):
    result = subprocess.run(  # noqa: PLW1510
        [str(OUTBOUND), "run", "examples/contacts.csv", "--data-dir", str(tmp_path),
         "--temporal-port", "99999"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=WIDE,
    )  # fmt: skip

    assert result.returncode == 2
    assert "--temporal-port" in result.stderr
    assert "less than or equal to 65535" in result.stderr
    assert not (tmp_path / "ports.json").exists()


def test_status_without_stack_says_how_to_start(tmp_path):
    (tmp_path / "ports.json").write_text(json.dumps(dict(zip(
        ("temporal", "ui", "api", "simulator"), free_ports(4)))))  # fmt: skip

    result = subprocess.run(  # noqa: PLW1510
        [str(OUTBOUND), "status", "1", "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=WIDE,
    )  # fmt: skip

    assert result.returncode == 1
    assert "outbound up" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_stack_on_same_directory_refused(tmp_path):
    from cli.stack import EmbeddedStack, StackError, StackPorts

    temporal, ui, api, simulator = free_ports(4)
    first = EmbeddedStack(tmp_path, StackPorts(temporal, ui, api, simulator))
    first.start()
    try:
        second = EmbeddedStack(tmp_path, StackPorts(*free_ports(4)))
        with pytest.raises(StackError, match="already running"):
            second.start()
    finally:
        first.stop()

    assert first.running_pids() == {}


def test_start_waits_for_other_starter(tmp_path):
    from cli.stack import EmbeddedStack, StackError, StackPorts

    stack = EmbeddedStack(tmp_path, StackPorts(*free_ports(4)))
    # Another command holds the start lock and never finishes.
    with open(tmp_path / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(StackError, match="still starting the stack"):
            stack.start_unless_running(wait_seconds=0.5)

    assert stack.running_pids() == {}
    assert not (tmp_path / "logs").exists()


def test_failed_start_keeps_other_pid_file(tmp_path):
    from cli.stack import EmbeddedStack, StackPorts

    pid_file = tmp_path / "stack.json"
    pid_file.write_text(json.dumps({"temporal": os.getpid()}))
    stack = EmbeddedStack(tmp_path, StackPorts(*free_ports(4)))
    # As if this command's own Temporal had exited during start-up.
    stack._processes = [("temporal", subprocess.Popen(["true"]))]

    stack.stop()

    assert json.loads(pid_file.read_text()) == {"temporal": os.getpid()}


def test_down_waits_for_processes(tmp_path):
    from cli.stack import EmbeddedStack

    process = subprocess.Popen(["sleep", "60"])
    (tmp_path / "stack.json").write_text(json.dumps({"worker": process.pid}))

    stopped = EmbeddedStack(tmp_path).stop_detached()

    assert stopped == 1
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert not (tmp_path / "stack.json").exists()


def test_stop_kills_process_ignoring_sigterm():
    from cli.stack import _wait_for_exit

    stubborn = subprocess.Popen(
        [sys.executable, "-c", IGNORE_SIGTERM], stdout=subprocess.PIPE
    )
    stubborn.stdout.readline()
    stubborn.send_signal(signal.SIGTERM)

    _wait_for_exit({"stubborn": stubborn.pid}, timeout=0.5)

    assert stubborn.wait(timeout=10) == -signal.SIGKILL


def test_run_invalid_setting_starts_nothing(tmp_path):
    result = run_outbound(
        tmp_path / "state", "examples/contacts.csv", "--max-attempts", "0"
    )

    assert result.returncode == 2
    assert "--max-attempts" in result.stderr
    assert not (tmp_path / "state").exists()


def test_run_all_rows_bad_lists_them(tmp_path):
    contacts = tmp_path / "bad.csv"
    contacts.write_text("phone\nabc\n1.2E+10\n")

    result = run_outbound(tmp_path / "state", str(contacts))

    assert result.returncode == 1
    assert "row 2: not a phone number" in result.stderr
    assert "row 3: a spreadsheet turned the number" in result.stderr
    assert "no contacts imported" in result.stderr


def test_run_header_only_file_says_so(tmp_path):
    contacts = tmp_path / "empty.csv"
    contacts.write_text("phone,name\n")

    result = run_outbound(tmp_path / "state", str(contacts))

    assert result.returncode == 1
    assert "it has no data rows" in result.stderr
    assert "listed above" not in result.stderr


def test_failed_run_leaves_no_processes(tmp_path):
    contacts = tmp_path / "bad.csv"
    contacts.write_text("phone\nabc\n")

    result = run_outbound(tmp_path / "state", str(contacts))

    assert result.returncode == 1
    assert not (tmp_path / "state" / "stack.json").exists()
