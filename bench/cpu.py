"""CPU time and memory of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Fields of /proc/PID/stat after the command name: state is field 3, so
# utime (14) and stime (15) are at these offsets, and ppid (4) at 1.
_PPID_OFFSET = 1
_UTIME_OFFSET = 11
_STIME_OFFSET = 12


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far."""
    fields = _stat_fields(pid)
    ticks = int(fields[_UTIME_OFFSET]) + int(fields[_STIME_OFFSET])
    return ticks / CLOCK_TICKS


def child_pids(command_name: str) -> list[int]:
    """Pids of this process's children whose command name is ``command_name``."""
    found = []
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            fields = _stat_fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if name == command_name and fields[_PPID_OFFSET] == me:
            found.append(int(entry.name))
    return found


def status_kib(pid: int, field: str) -> int:
    """Read a memory field of /proc/PID/status, such as VmHWM or VmRSS, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"/proc/{pid}/status has no field {field}")


def machine_load() -> str:
    """Describe the 1-minute load average and the cores in a few words."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


@dataclass
class CpuMeter:
    """CPU seconds used by named processes between :meth:`start` and :meth:`stop`."""

    pids: Mapping[str, int]

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {
            name: cpu_seconds(pid) - self._start[name]
            for name, pid in self.pids.items()
        }
