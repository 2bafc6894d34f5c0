"""``outbound inbox`` and ``outbound usage``: answered calls and the plan's AI calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.client import ApiFailure
from cli.durations import format_duration
from cli.stack import EmbeddedStack
from config import DEFAULT_DATA_DIR

console = Console()
err_console = Console(stderr=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Directory for all the stack's state.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SUMMARY_WIDTH = 60
# Below this many columns the inbox prints one block per call instead of a table.
WIDE_TERMINAL = 120
INBOX_COLUMNS = (
    "attempt",
    "when",
    "contact",
    "campaign",
    "agent",
    "talk",
    "labels",
    "summary",
    "recording",
)


def inbox(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    campaign: Annotated[
        int | None, typer.Option(help="Only the calls of this campaign id.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="Only calls the agent gave this label.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only calls placed at or after this ISO time, UTC if naive."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only calls placed before this ISO time, UTC if naive."),
    ] = None,
    before: Annotated[
        int | None,
        typer.Option(help="Only calls older than this cursor, from the last page."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Calls per page.")] = 20,
    transcripts: Annotated[
        bool, typer.Option("--transcripts", help="Print each call's transcript.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show answered calls, newest first, with what the agent reported."""
    params = {
        "campaign_id": campaign,
        "label": label,
        "since": since,
        "until": until,
        "before_id": before,
        "limit": limit,
    }
    page = _request(data_dir, "/inbox", params)
    if as_json:
        console.print_json(json.dumps(page))
    else:
        print_inbox(console, page, transcripts=transcripts)


def usage(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    month: Annotated[
        str | None,
        typer.Option(help="Month as YYYY-MM, in UTC; the current month if left out."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Show the month's AI calls and minutes against the plan."""
    report = _request(data_dir, "/usage", {"month": month})
    if as_json:
        console.print_json(json.dumps(report))
    else:
        print_usage(console, report)


def fetch(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    """GET ``path`` with the parameters that are set, or raise ApiFailure."""
    query = {key: value for key, value in params.items() if value is not None}
    try:
        response = client.get(path, params=query)
    except httpx.HTTPError as error:
        raise ApiFailure(f"GET {path} failed: {error}") from error
    if response.status_code >= 400:
        raise ApiFailure(f"GET {path} failed: {_error_message(response)}")
    return response.json()


def print_inbox(
    out: Console, page: dict[str, Any], *, transcripts: bool = False
) -> None:
    items = page["items"]
    if not items:
        out.print("No answered calls.")
        return
    if out.width >= WIDE_TERMINAL:
        _print_inbox_table(out, items)
    else:
        _print_inbox_blocks(out, items)
    if transcripts:
        for entry in items:
            _print_transcript(out, entry)
    if page["next_cursor"] is not None:
        out.print(f"Older calls: --before {page['next_cursor']}")


def _print_inbox_table(out: Console, items: list[dict[str, Any]]) -> None:
    table = Table(title="Answered calls, newest first")
    for column in INBOX_COLUMNS[:-2]:
        table.add_column(column)
    table.add_column("summary", max_width=SUMMARY_WIDTH)
    # Folded rather than cut, so the whole address can be copied.
    table.add_column("recording", overflow="fold")
    for entry in items:
        table.add_row(*_inbox_row(entry))
    out.print(table)


def _print_inbox_blocks(out: Console, items: list[dict[str, Any]]) -> None:
    """Print one block of labelled lines per call, for terminals too narrow for
    the table's nine columns."""
    out.print("[bold]Answered calls, newest first[/bold]")
    for entry in items:
        out.print()
        fields = dict(zip(INBOX_COLUMNS, _inbox_row(entry), strict=True))
        out.print(
            f"[bold]Call attempt {fields.pop('attempt')}[/bold]  {fields.pop('when')}"
        )
        block = Table.grid(padding=(0, 1))
        block.add_column(min_width=12)
        block.add_column()
        for name, value in fields.items():
            if value:
                block.add_row(f"  {name}:", Text(value))
        out.print(block)


def print_usage(out: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"AI calls in {report['month']}")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    table.add_row("AI calls", str(report["ai_calls"]))
    table.add_row("minutes", str(report["ai_call_minutes"]))
    table.add_row("included in the plan", str(report["included_ai_calls"]))
    table.add_row("remaining", str(report["remaining_ai_calls"]))
    if report["over_plan_ai_calls"]:
        table.add_row("over the plan", str(report["over_plan_ai_calls"]))
    out.print(table)
    out.print(
        "AI calls are calls answered by a person and connected to the agent; "
        "voicemails, busy lines, failures and unanswered dials do not count."
    )


def _inbox_row(entry: dict[str, Any]) -> list[str]:
    result = entry["result"] or {}
    contact = entry["contact"]
    contact_text = contact["phone"]
    if contact["name"]:
        contact_text = f"{contact['name']} {contact['phone']}"
    talk = entry["talk_seconds"]
    return [
        str(entry["attempt_id"]),
        entry["called_at"][:19].replace("T", " "),
        contact_text,
        _named(entry["campaign"]),
        _named(entry["agent"]),
        format_duration(talk) if talk is not None else "",
        ", ".join(result.get("labels") or []),
        result.get("summary") or "",
        result.get("recording_url") or "",
    ]


def _print_transcript(out: Console, entry: dict[str, Any]) -> None:
    transcript = (entry["result"] or {}).get("transcript")
    out.print(f"[bold]Call attempt {entry['attempt_id']}[/bold]")
    out.print(transcript or "(no transcript reported)", markup=False)


def _named(ref: dict[str, Any]) -> str:
    return f"{ref['id']} {ref['name']}" if ref["name"] else str(ref["id"])


def _request(data_dir: Path, path: str, params: dict[str, Any]) -> Any:
    stack = EmbeddedStack(data_dir)
    headers = {"X-API-Key": stack.secrets.api_key}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
        try:
            return fetch(client, path, params)
        except ApiFailure as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"
