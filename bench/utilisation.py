"""Line utilisation: how close a campaign comes to keeping every line busy.

    python -m bench.utilisation [--contacts 100] [--lines 10] [--call-seconds 10]

Every contact answers at once and talks for T seconds of wall-clock time, so
N contacts on L lines cannot take less than N*T/L. Target: the campaign's
elapsed time, from the start request until it is finished, is at most 1.10
times that ideal.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.campaign import print_progress, run_campaign
from bench.cpu import machine_load
from bench.figures import Figure, argument_parser, quiet_logging
from bench.numbers import open_numbers
from bench.stack import EngineOptions, EngineProcesses, bench_database, dev_server
from telephony.scenario import Scenario

TARGET_RATIO = 1.10
SAMPLE_SECONDS = 0.5
CALLS_PER_SECOND = 1_000.0


def scenario_for(call_seconds: float) -> Scenario:
    """Every call answered without ringing, lasting ``call_seconds``."""
    return Scenario(
        rates={"human": 1.0},
        ring_seconds={"human": 0.0},
        talk_seconds={"human": call_seconds},
        time_scale=1.0,
    )


async def sample_live_calls(engine: EngineProcesses, samples: list[int]) -> None:
    """Append the simulator's live calls every SAMPLE_SECONDS until cancelled."""
    while True:
        stats = await asyncio.to_thread(engine.simulator_stats)
        samples.append(stats["live_calls"])
        await asyncio.sleep(SAMPLE_SECONDS)


async def measure(
    contacts: int, lines: int, call_seconds: float, database: str
) -> Figure:
    numbers = open_numbers(contacts)
    ideal = contacts * call_seconds / lines
    options = EngineOptions(
        scenario=scenario_for(call_seconds),
        plan_line_limit=lines,
        calls_per_second=CALLS_PER_SECOND,
    )
    print(
        f"contacts: {contacts}, lines: {lines}, call: {call_seconds} s, {machine_load()}"
    )
    samples: list[int] = []
    async with dev_server() as env:
        with (
            tempfile.TemporaryDirectory(prefix="bench-") as tmp,
            bench_database(database, Path(tmp)) as db,
            EngineProcesses(env, db, Path(tmp), options) as engine,
        ):
            sampler = asyncio.create_task(sample_live_calls(engine, samples))
            run = await run_campaign(
                engine, numbers, timeout=ideal * 3 + 120, on_progress=print_progress
            )
            sampler.cancel()
            stats = engine.simulator_stats()
    print_details(run.seconds, ideal, lines, samples, stats)
    ratio = run.seconds / ideal
    return Figure(
        "line_utilisation", f"{ratio:.3f}", f"<={TARGET_RATIO}", ratio <= TARGET_RATIO
    )


def print_details(
    seconds: float, ideal: float, lines: int, samples: list[int], stats: dict
) -> None:
    busy = sum(samples) / len(samples) / lines if samples else 0.0
    print(f"ideal N*T/L: {ideal:.1f} s, elapsed: {seconds:.1f} s")
    print(f"lines busy on average while running: {busy:.1%}")
    print(
        f"calls created: {stats['calls_created']}, max live: {stats['max_live_calls']}"
    )
    print(f"after the run: {machine_load()}")
    print(f"elapsed / ideal: {seconds / ideal:.3f} (target <= {TARGET_RATIO})")


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--call-seconds", type=float, default=10.0)
    args = parser.parse_args()
    quiet_logging()
    figure = asyncio.run(
        measure(args.contacts, args.lines, args.call_seconds, args.database)
    )
    print(figure.line())


if __name__ == "__main__":
    main()
