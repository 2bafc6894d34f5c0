"""The ``outbound`` command: run a campaign from a CSV, or keep the stack up."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from api.schemas import CampaignSettingsIn
from cli import answered
from cli.admin import admin
from cli.client import ApiClient, ApiFailure
from cli.durations import format_duration, parse_duration
from cli.progress import follow_campaign
from cli.stack import EmbeddedStack, StackError, StackPorts, load_ports
from cli.summary import build_summary, print_summary
from config import DEFAULT_DATA_DIR
from rules.window import CallingWindow, WindowError
from telephony.scenario import Scenario

app = typer.Typer(
    help="Outbound calling campaigns for voice agents, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin, name="admin")
app.command()(answered.inbox)
app.command()(answered.usage)
console = Console()
err_console = Console(stderr=True)

DEMO_AGENT_NAME = "Demo agent"
INBOX_ROWS_SHOWN = 10
DEMO_AGENT_NUMBER = "+12025550100"

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Directory for all the stack's state.")
]
TemporalPort = Annotated[
    int | None,
    typer.Option(help="Port of Temporal's frontend (default 7233).", min=1, max=65535),
]
UiPort = Annotated[
    int | None,
    typer.Option(help="Port of the Temporal web UI (default 8233).", min=1, max=65535),
]
ApiPort = Annotated[
    int | None,
    typer.Option(help="Port of the API (default 8000).", min=1, max=65535),
]
SimulatorPort = Annotated[
    int | None,
    typer.Option(help="Port of the simulator (default 8077).", min=1, max=65535),
]


def _ports(
    data_dir: Path,
    temporal: int | None,
    ui: int | None,
    api: int | None,
    simulator: int | None,
) -> StackPorts:
    """Ports given on the command line, else those the stack last used."""
    known = load_ports(data_dir.resolve())
    return StackPorts(
        temporal=temporal or known.temporal,
        ui=ui or known.ui,
        api=api or known.api,
        simulator=simulator or known.simulator,
    )


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _duration(value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


@app.command()
def up(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    scenario: Annotated[
        Path | None, typer.Option(help="Simulator scenario file (JSON).")
    ] = None,
    lines: Annotated[int, typer.Option(help="The plan's concurrent-call limit.")] = 10,
    temporal_port: TemporalPort = None,
    ui_port: UiPort = None,
    api_port: ApiPort = None,
    simulator_port: SimulatorPort = None,
) -> None:
    """Start the embedded stack and keep it running until Ctrl-C."""
    _check_scenario(scenario)
    ports = _ports(data_dir, temporal_port, ui_port, api_port, simulator_port)
    stack = EmbeddedStack(data_dir, ports, scenario=scenario, plan_line_limit=lines)
    if not _start(stack):
        err_console.print(f"A stack is already running at {stack.api_url}.")
        raise typer.Exit(1)
    _print_places(stack)
    console.print("Stack running; press Ctrl-C to stop it.")
    # SIGTERM (from a service manager, or kill) stops the stack like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while stack.failed_process() is None:
            time.sleep(1)
        err_console.print(
            f"[red]{stack.failed_process()} exited; see {data_dir / 'logs'}[/red]"
        )
    except KeyboardInterrupt:
        console.print("Stopping…")
    finally:
        stack.stop()


@app.command()
def run(
    contacts: Annotated[Path, typer.Argument(help="CSV file of contacts.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    max_attempts: Annotated[int, typer.Option(help="Attempts per contact.")] = 3,
    retry_delay: Annotated[
        str, typer.Option(help="Delay between attempts, such as 4h or 5s.")
    ] = "4h",
    ring_timeout: Annotated[
        str, typer.Option(help="How long a call rings before no-answer, such as 25s.")
    ] = "25s",
    window_start: Annotated[
        str, typer.Option(help="Calling window start, local time.")
    ] = "09:00",
    window_end: Annotated[
        str, typer.Option(help="Calling window end, local time.")
    ] = "20:00",
    window_days: Annotated[
        str, typer.Option(help="Calling days as ISO weekdays, Monday = 1.")
    ] = "1,2,3,4,5,6",
    max_concurrent_calls: Annotated[
        int | None,
        typer.Option(help="Cap on this campaign's share of the plan's lines."),
    ] = None,
    require_consent: Annotated[
        bool, typer.Option(help="Call only contacts with a recorded consent basis.")
    ] = True,
    consent_basis: Annotated[
        str | None,
        typer.Option(help="Consent basis for every row without one, such as inquiry."),
    ] = None,
    phone_column: Annotated[
        str | None, typer.Option(help="Header of the phone column, if not detected.")
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Simulator scenario file, when the stack starts."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
    keep_stack: Annotated[
        bool,
        typer.Option(help="Leave a stack started by this run running afterwards."),
    ] = True,
    temporal_port: TemporalPort = None,
    ui_port: UiPort = None,
    api_port: ApiPort = None,
    simulator_port: SimulatorPort = None,
) -> None:
    """Import CONTACTS, run a campaign over them, and print what happened."""
    if not contacts.is_file():
        err_console.print(f"[red]Contacts file not found: {contacts}[/red]")
        raise typer.Exit(2)
    settings = {
        "max_attempts": max_attempts,
        "retry_delay_seconds": _duration(retry_delay),
        "ring_timeout_seconds": _duration(ring_timeout),
        "window_start": window_start,
        "window_end": window_end,
        "window_days": _weekdays(window_days),
        "max_concurrent_calls": max_concurrent_calls,
        "require_consent": require_consent,
    }
    _check_settings(settings)
    _check_scenario(scenario)
    ports = _ports(data_dir, temporal_port, ui_port, api_port, simulator_port)
    stack = EmbeddedStack(data_dir, ports, scenario=scenario)
    started_here = _start(stack, quiet=as_json)
    if scenario is not None and not started_here:
        err_console.print(
            f"[yellow]The stack was already running and keeps the scenario it "
            f"started with; to use {scenario}, stop it with `outbound down "
            f"--data-dir {data_dir}` and run again.[/yellow]"
        )
    stopped = started_here and not keep_stack
    try:
        summary = _run_campaign(
            stack, contacts, settings, consent_basis, phone_column, quiet=as_json
        )
    except ApiFailure as error:
        _leave(stack, started_here=started_here, stop=stopped)
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    except BaseException as error:
        # Interrupted or crashed: a stack this run started goes down with it.
        if started_here:
            stack.stop()
        if isinstance(error, KeyboardInterrupt):
            _print_interrupted(data_dir, stopped_stack=started_here)
        raise
    _leave(stack, started_here=started_here, stop=stopped)
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    else:
        print_summary(console, summary)
        answered.print_inbox(console, summary["inbox"])
        answered.print_usage(console, summary["usage"])
        _print_places(stack, stopped=stopped, detached=started_here and keep_stack)


@app.command()
def down(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop a stack left running in the background by `outbound run`."""
    stack = EmbeddedStack(data_dir)
    stopped = stack.stop_detached()
    console.print(
        f"Stopped {stopped} processes." if stopped else "No stack was running."
    )


@app.command()
def status(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a campaign's counts, lines in use and why contacts wait."""
    stack = EmbeddedStack(data_dir)
    client = ApiClient(stack.api_url, stack.secrets.api_key)
    try:
        campaign = client.get_campaign(campaign_id)
    except ApiFailure as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    summary = build_summary(campaign, None)
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    else:
        print_summary(console, summary)


def _run_campaign(
    stack: EmbeddedStack,
    contacts: Path,
    settings: dict[str, Any],
    consent_basis: str | None,
    phone_column: str | None,
    *,
    quiet: bool,
) -> dict[str, Any]:
    client = ApiClient(stack.api_url, stack.secrets.api_key)
    report = client.import_contacts(
        contacts, consent_basis=consent_basis, phone_column=phone_column
    )
    if report["created"] + report["updated"] == 0:
        if not report["rejected"]:
            raise ApiFailure(
                f"no contacts imported from {contacts}: it has no data rows"
            )
        for rejected in report["rejected"]:
            err_console.print(f"  row {rejected['row']}: {rejected['reason']}")
        raise ApiFailure(
            f"no contacts imported from {contacts}: "
            f"{len(report['rejected'])} rows rejected (listed above)"
        )
    simulator_url = f"http://127.0.0.1:{stack.ports.simulator}"
    agent_id = client.ensure_agent(
        DEMO_AGENT_NAME, DEMO_AGENT_NUMBER, f"{simulator_url}/agent/voice"
    )
    # The simulator plays the demo agent: it reads each answered call's
    # context and reports a transcript, a summary and labels.
    token = client.new_agent_token(agent_id)
    httpx.put(
        f"{simulator_url}/_sim/agent",
        json={"engine_url": stack.api_url, "token": token},
        trust_env=False,
    ).raise_for_status()
    campaign = client.create_campaign(
        name=f"{contacts.stem} {time.strftime('%Y-%m-%d %H:%M:%S')}",
        agent_id=agent_id,
        import_id=report["import_id"],
        settings=settings,
    )
    client.start_campaign(campaign["id"])
    final = follow_campaign(client, campaign["id"], console=console, quiet=quiet)
    summary = build_summary(final, report)
    summary["inbox"] = client.get(
        "/inbox", campaign_id=campaign["id"], limit=INBOX_ROWS_SHOWN
    )
    summary["usage"] = client.get("/usage", month=time.strftime("%Y-%m", time.gmtime()))
    return summary


def _print_interrupted(data_dir: Path, *, stopped_stack: bool) -> None:
    if stopped_stack:
        err_console.print(
            "Interrupted; the stack this run started is stopped. The campaign "
            f"keeps its state: `outbound up --data-dir {data_dir}` goes on calling."
        )
    else:
        err_console.print(
            "Interrupted; the campaign goes on in the running stack "
            f"(`outbound down --data-dir {data_dir}` stops it)."
        )


def _leave(stack: EmbeddedStack, *, started_here: bool, stop: bool) -> None:
    """Stop a stack this run started, or leave it running in the background."""
    if not started_here:
        return
    if stop:
        stack.stop()
    else:
        stack.detach()


def _start(stack: EmbeddedStack, *, quiet: bool = False) -> bool:
    """Start the stack unless it is running, and return True if started here."""
    if stack.is_running():
        return False
    if not quiet:
        err_console.print(f"Starting the embedded stack in {stack.data_dir} …")
    try:
        return stack.start_unless_running()
    except StackError as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None


def _print_places(
    stack: EmbeddedStack, *, stopped: bool = False, detached: bool = False
) -> None:
    console.print(f"Temporal web UI: {stack.ui_url}")
    console.print(f"API docs:        {stack.api_url}/docs")
    console.print(f"API key:         in {stack.data_dir / 'secrets.json'}")
    if stopped:
        console.print(
            "The stack was started for this run and is stopped now; "
            "`outbound up` brings it back with everything it held."
        )
    if detached:
        console.print(
            "The stack keeps running in the background so that waiting contacts "
            "are called; `outbound down` stops it."
        )


# The option of `outbound run` that sets each campaign setting.
OPTION_OF_SETTING = {
    "max_attempts": "--max-attempts",
    "retry_delay_seconds": "--retry-delay",
    "ring_timeout_seconds": "--ring-timeout",
    "window_start": "--window-start",
    "window_end": "--window-end",
    "window_days": "--window-days",
    "max_concurrent_calls": "--max-concurrent-calls",
    "require_consent": "--require-consent",
}


DURATION_SETTINGS = {"retry_delay_seconds", "ring_timeout_seconds"}


def _duration_bound(context: dict[str, Any], message: str) -> str:
    """Word a range error of a duration in units, not in raw seconds."""
    if "le" in context:
        return f"must be at most {format_duration(int(context['le']))}"
    if "ge" in context:
        return f"must be at least {format_duration(int(context['ge']))}"
    return message


def _check_settings(settings: dict[str, Any]) -> None:
    """Check the campaign settings before anything is imported or started."""
    try:
        checked = CampaignSettingsIn(
            **{k: v for k, v in settings.items() if v is not None}
        )
        CallingWindow.parse(
            checked.window_start, checked.window_end, checked.window_days
        )
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            option = OPTION_OF_SETTING.get(field, field)
            message = item["msg"].removeprefix("Value error, ")
            if field in DURATION_SETTINGS and "ctx" in item:
                message = _duration_bound(item["ctx"], message)
            problems.append(f"{option}: {message}")
        _fail("; ".join(problems))
    except WindowError as error:
        _fail(str(error))


def _check_scenario(path: Path | None) -> None:
    """Read the simulator's scenario file now, so that a bad one stops the
    command before anything starts."""
    if path is None:
        return
    try:
        Scenario.from_file(path)
    except OSError as error:
        _fail(f"--scenario: cannot read {path}: {error.strerror}")
    except (ValueError, TypeError) as error:
        detail = str(error).removeprefix("scenario: ")
        _fail(f"--scenario: {detail}, in {path}")


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]Invalid option: {message}[/red]", markup=True)
    raise typer.Exit(2)


def _weekdays(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"invalid weekdays {text!r}: list ISO weekday numbers such as 1,2,3,4,5"
        ) from None
