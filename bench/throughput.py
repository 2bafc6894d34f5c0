"""Contacts per second through the whole engine, against bare Temporal.

    python -m bench.throughput [--contacts 1000] [--database sqlite]

Both run on one dev server in one run: first the baseline (bench.baseline),
then a campaign whose every call is answered at once (simulator time_scale
0), with lines and calls per second far above the load. Target: the engine's
rate is at least half the baseline's. The CPU seconds each process spends
per contact show where the difference goes.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.baseline import run_baseline
from bench.campaign import print_progress, run_campaign
from bench.cpu import CpuMeter, child_pids, machine_load
from bench.figures import Figure, argument_parser, quiet_logging
from bench.numbers import open_numbers
from bench.stack import EngineOptions, EngineProcesses, bench_database, dev_server
from telephony.scenario import Scenario

# TODO(engine): the engine reaches about 0.36 of the baseline's rate, because a
# contact costs about 2.7 times a baseline child's CPU (bench/README.md).
TARGET_RATIO = 0.5
WARM_UP_ITEMS = 20
TIMEOUT_SECONDS = 900.0


async def measure_baseline(env: WorkflowEnvironment, items: int) -> float:
    """Run the baseline and print its rate and CPU; return its seconds."""
    meter = CpuMeter({"dev server": _server_pid(), "baseline worker": os.getpid()})
    # The first workflows on a new server pay for caches filling up.
    await run_baseline(env.client, WARM_UP_ITEMS, timeout=TIMEOUT_SECONDS)
    meter.start()
    seconds = await run_baseline(env.client, items, timeout=TIMEOUT_SECONDS)
    print(f"baseline: {seconds:.1f} s, {items / seconds:.1f} children/s")
    print_cpu(meter.stop(), items, seconds)
    return seconds


async def measure_engine(
    env: WorkflowEnvironment, numbers: list[str], database: str
) -> float:
    """Run one campaign and print its rate and CPU; return its seconds."""
    options = EngineOptions(scenario=Scenario(rates={"human": 1.0}, time_scale=0.0))
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        bench_database(database, Path(tmp)) as db,
        EngineProcesses(env, db, Path(tmp), options) as engine,
    ):
        assert engine.api is not None and engine.simulator is not None
        meter = CpuMeter(
            {
                "dev server": _server_pid(),
                "worker": engine.workers[0].pid,
                "api": engine.api.pid,
                "simulator": engine.simulator.pid,
                "benchmark": os.getpid(),
            }
        )
        meter.start()
        run = await run_campaign(
            engine, numbers, timeout=TIMEOUT_SECONDS, on_progress=print_progress
        )
        used = meter.stop()
    print(f"engine: {run.seconds:.1f} s, {len(numbers) / run.seconds:.1f} contacts/s")
    print_cpu(used, len(numbers), run.seconds)
    return run.seconds


def print_cpu(used: dict[str, float], items: int, seconds: float) -> None:
    for name, cpu in used.items():
        print(f"  {name:16} {cpu:7.1f} CPU s, {cpu / items * 1000:6.1f} ms per item")
    total = sum(used.values())
    print(
        f"  {'all':16} {total:7.1f} CPU s, {total / items * 1000:6.1f} ms per item, "
        f"{total / seconds:.2f} cores busy on average"
    )


def _server_pid() -> int:
    pids = child_pids("temporal")
    if len(pids) != 1:
        raise RuntimeError(f"expected one dev server process, found {pids}")
    return pids[0]


async def measure(contacts: int, database: str) -> Figure:
    numbers = open_numbers(contacts)
    print(f"contacts: {contacts}, database: {database}, {machine_load()}")
    async with dev_server() as env:
        baseline = await measure_baseline(env, contacts)
        engine = await measure_engine(env, numbers, database)
    ratio = baseline / engine
    print(f"after the run: {machine_load()}")
    print(f"ratio of rates, engine/baseline: {ratio:.2f} (target >= {TARGET_RATIO})")
    return Figure(
        "throughput", f"{ratio:.2f}", f">={TARGET_RATIO}", ratio >= TARGET_RATIO
    )


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000)
    args = parser.parse_args()
    quiet_logging()
    figure = asyncio.run(measure(args.contacts, args.database))
    print(figure.line())


if __name__ == "__main__":
    main()
