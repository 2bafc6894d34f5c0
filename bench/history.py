"""The largest history of any workflow run in a large campaign.

    python -m bench.history [--contacts 20000] [--budget-seconds 600]

Every call is answered at once. When the campaign has finished, or the
budget has run out, every run of the campaign's workflows is listed and the
event count of each is read; the largest counts are checked against the full
history. Target: under 10,240 events, Temporal's warning threshold.

A campaign stopped at the budget reports the runs made so far. The campaign
workflow continues as new every 400 starts, so its later runs repeat the
same shape; the output then says how far the campaign got.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from bench.campaign import final_members, print_progress, start_campaign, wait_finished
from bench.cpu import machine_load
from bench.figures import Figure, argument_parser, quiet_logging
from bench.numbers import open_numbers
from bench.stack import EngineOptions, EngineProcesses, bench_database, dev_server
from telephony.scenario import Scenario

WARNING_EVENTS = 10_240
# TODO(bench): 20,000 contacts take about half an hour on 2 cores, so the
# default budget stops the campaign part way and reports the runs made so far.
CHECKED_RUNS = 5


@dataclass(frozen=True)
class RunLength:
    workflow_id: str
    run_id: str
    events: int


async def run_lengths(client: Client, prefix: str) -> list[RunLength]:
    """List every run of the workflows whose id starts with ``prefix``, longest first."""
    found = []
    query = f'WorkflowId STARTS_WITH "{prefix}"'
    async for execution in client.list_workflows(query, page_size=1_000):
        events = execution.history_length
        if not events:
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            events = (await handle.describe()).history_length
        found.append(RunLength(execution.id, execution.run_id, events))
    return sorted(found, key=lambda run: run.events, reverse=True)


async def exact_events(client: Client, run: RunLength) -> int:
    handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id)
    return len((await handle.fetch_history()).events)


async def measure(contacts: int, budget: float, database: str) -> Figure:
    numbers = open_numbers(contacts)
    options = EngineOptions(scenario=Scenario(rates={"human": 1.0}, time_scale=0.0))
    print(f"contacts: {contacts}, database: {database}, {machine_load()}")
    async with dev_server() as env:
        with (
            tempfile.TemporaryDirectory(prefix="bench-") as tmp,
            bench_database(database, Path(tmp)) as db,
            EngineProcesses(env, db, Path(tmp), options) as engine,
        ):
            campaign = await start_campaign(engine, numbers)
            try:
                await wait_finished(
                    engine,
                    campaign.campaign_id,
                    campaign.started + budget,
                    print_progress,
                )
            except TimeoutError as error:
                print(f"  stopped at the budget: {error}")
            finished, _ = final_members(db, campaign.campaign_id)
            runs = await run_lengths(env.client, engine.workflow_id_prefix)
            largest = max(
                [await exact_events(env.client, r) for r in runs[:CHECKED_RUNS]]
            )
    print_details(runs, finished, contacts)
    met = largest < WARNING_EVENTS
    return Figure("history", str(largest), f"<{WARNING_EVENTS}", met)


def print_details(runs: list[RunLength], finished: int, contacts: int) -> None:
    campaign_runs = [run for run in runs if "/" not in run.workflow_id]
    contact_runs = [run for run in runs if "/" in run.workflow_id]
    if finished < contacts:
        print(f"PARTIAL: {finished} of {contacts} contacts final at the budget")
    print(f"campaign runs: {len(campaign_runs)}, largest {campaign_runs[0].events}")
    print(f"contact runs: {len(contact_runs)}, largest {contact_runs[0].events}")
    print(f"largest run: {runs[0].workflow_id} with {runs[0].events} events")
    print(f"after the run: {machine_load()}")


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--budget-seconds", type=float, default=600.0)
    args = parser.parse_args()
    quiet_logging()
    figure = asyncio.run(measure(args.contacts, args.budget_seconds, args.database))
    print(figure.line())


if __name__ == "__main__":
    main()
