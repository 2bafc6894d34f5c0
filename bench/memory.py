"""The worker's peak memory on a large campaign against a small one.

    python -m bench.memory [--small 1000] [--large 100000] [--budget-seconds 480]

Each campaign runs on a fresh ``python -m worker`` process, whose peak
resident memory (VmHWM in /proc/PID/status) is read when it ends. Every call
is answered at once. Target: the peak at the large size is at most twice the
peak at the small one.

When the large campaign cannot finish within the budget, the run stops there
and the peak at the full size is an estimate: the memory measured so far plus
its growth per finished contact over the last half of the run, times the
contacts still open. The output says so.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.campaign import (
    final_members,
    print_progress,
    start_campaign,
    wait_finished,
)
from bench.cpu import machine_load, status_kib
from bench.figures import Figure, argument_parser, quiet_logging
from bench.numbers import open_numbers
from bench.stack import EngineOptions, EngineProcesses, bench_database, dev_server
from telephony.scenario import Scenario

TARGET_RATIO = 2.0
# TODO(bench): at 12 to 16 contacts a second on 2 cores, 100,000 contacts take
# about two hours, so the default budget measures the first few thousand of
# them and the figure is then an estimate (the output says so).
SAMPLE_SECONDS = 2.0
KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Sample:
    seconds: float
    final: int
    rss_kib: int


@dataclass(frozen=True)
class MemoryRun:
    contacts: int
    finished: int
    seconds: float
    peak_kib: int
    samples: list[Sample]

    @property
    def complete(self) -> bool:
        return self.finished == self.contacts

    def estimated_peak_kib(self) -> int:
        """Estimate the peak at full size: the measured peak plus the recent growth
        per finished contact, times the contacts left."""
        if self.complete or len(self.samples) < 4:
            return self.peak_kib
        half = self.samples[len(self.samples) // 2 :]
        contacts = half[-1].final - half[0].final
        if contacts <= 0:
            return self.peak_kib
        per_contact = max(0.0, (half[-1].rss_kib - half[0].rss_kib) / contacts)
        left = self.contacts - self.finished
        return round(self.peak_kib + per_contact * left)


async def sample_worker(
    engine: EngineProcesses, campaign_id: int, samples: list[Sample]
) -> None:
    """Record the worker's RSS and the finished contacts until cancelled."""
    pid = engine.workers[0].pid
    started = time.monotonic()
    while True:
        final, _ = await asyncio.to_thread(final_members, engine.db, campaign_id)
        rss = status_kib(pid, "VmRSS")
        samples.append(Sample(time.monotonic() - started, final, rss))
        await asyncio.sleep(SAMPLE_SECONDS)


async def run_size(
    env: WorkflowEnvironment, contacts: int, budget: float, database: str
) -> MemoryRun:
    """Run one campaign of ``contacts`` on a fresh worker, up to ``budget`` s."""
    numbers = open_numbers(contacts)
    options = EngineOptions(scenario=Scenario(rates={"human": 1.0}, time_scale=0.0))
    samples: list[Sample] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        bench_database(database, Path(tmp)) as db,
        EngineProcesses(env, db, Path(tmp), options) as engine,
    ):
        campaign = await start_campaign(engine, numbers)
        sampler = asyncio.create_task(
            sample_worker(engine, campaign.campaign_id, samples)
        )
        try:
            await wait_finished(
                engine, campaign.campaign_id, campaign.started + budget, print_progress
            )
        except TimeoutError as error:
            print(f"  stopped at the budget: {error}")
        seconds = time.monotonic() - campaign.started
        sampler.cancel()
        peak = status_kib(engine.workers[0].pid, "VmHWM")
        finished, _ = final_members(db, campaign.campaign_id)
    return MemoryRun(contacts, finished, seconds, peak, samples)


def describe(run: MemoryRun) -> None:
    state = "finished" if run.complete else "stopped at the budget"
    print(
        f"{run.contacts} contacts: {run.finished} final in {run.seconds:.0f} s "
        f"({state}), worker peak {run.peak_kib / KIB_PER_MIB:.0f} MiB"
    )
    if run.samples:
        points = [run.samples[len(run.samples) * q // 4] for q in range(4)]
        points.append(run.samples[-1])
        text = ", ".join(
            f"{p.rss_kib / KIB_PER_MIB:.0f} MiB at {p.final}" for p in points
        )
        print(f"  worker RSS by contacts final: {text}")


async def run_both(
    env: WorkflowEnvironment, small: int, large: int, budget: float, database: str
) -> tuple[MemoryRun, MemoryRun]:
    small_run = await run_size(env, small, budget, database)
    describe(small_run)
    large_run = await run_size(env, large, budget, database)
    describe(large_run)
    return small_run, large_run


async def measure(small: int, large: int, budget: float, database: str) -> Figure:
    print(f"sizes: {small} and {large}, database: {database}, {machine_load()}")
    # A file, as on the embedded stack: in memory, the closed workflows of a
    # large campaign fill the machine's RAM before it ends.
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp:
        async with dev_server(database_file=Path(tmp) / "temporal.db") as env:
            small_run, large_run = await run_both(env, small, large, budget, database)
    ratio = large_run.peak_kib / small_run.peak_kib
    value = f"{ratio:.2f}"
    if not large_run.complete:
        estimate = large_run.estimated_peak_kib()
        print(
            f"ESTIMATE: peak at {large} contacts about "
            f"{estimate / KIB_PER_MIB:.0f} MiB, extrapolated from "
            f"{large_run.finished} finished contacts"
        )
        ratio = estimate / small_run.peak_kib
        value = f"{ratio:.2f}(estimate)"
    print(f"after the run: {machine_load()}")
    print(f"peak {large} / peak {small}: {value} (target <= {TARGET_RATIO:g})")
    return Figure("memory", value, f"<={TARGET_RATIO:g}", ratio <= TARGET_RATIO)


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--budget-seconds", type=float, default=480.0)
    args = parser.parse_args()
    quiet_logging()
    figure = asyncio.run(
        measure(args.small, args.large, args.budget_seconds, args.database)
    )
    print(figure.line())


if __name__ == "__main__":
    main()
