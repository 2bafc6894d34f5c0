"""Run every benchmark, one after the other, and print one line per figure.

    python -m bench.run_all [--database sqlite]

Each benchmark runs in its own process with its own servers. Their output is
passed through as it comes; the last lines are ``figure value target met``
(or ``missed``), one per figure, after the machine the run came from.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.figures import Figure, parse_figure

BENCHMARKS = (
    "bench.throughput",
    "bench.utilisation",
    "bench.history",
    "bench.memory",
    "bench.import_csv",
)


def machine() -> str:
    """Cores, memory and CPU model of this machine, from /proc."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    gib = memory_kib / 1024 / 1024
    return f"{os.cpu_count()} cores, {gib:.1f} GiB, {model}"


def run_one(module: str, database: str) -> tuple[Figure | None, float]:
    """Run one benchmark, echoing its output; return its figure and seconds."""
    print(f"== {module}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--database", database],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    figure = None
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        figure = parse_figure(line) or figure
    process.wait()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        print(f"{module} failed with status {process.returncode}")
        return None, seconds
    return figure, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite"
    )
    args = parser.parse_args()
    started = time.monotonic()
    results = [(module, *run_one(module, args.database)) for module in BENCHMARKS]
    print(f"== all figures ({time.monotonic() - started:.0f} s in all)")
    print(f"machine: {machine()}, database: {args.database}")
    print(
        "seconds: "
        + ", ".join(f"{m.removeprefix('bench.')} {s:.0f}" for m, _, s in results)
    )
    for module, figure, seconds in results:
        if figure is None:
            print(f"{module.removeprefix('bench.')} failed - missed")
        else:
            print(figure.line())
    failed = any(figure is None or not figure.met for _, figure, _ in results)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
