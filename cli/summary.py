"""The summary printed at the end of a run, as a table or as JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from activities.types import MemberState, Outcome

OUTCOME_ROWS = (
    ("answered", Outcome.ANSWERED),
    ("voicemail", Outcome.VOICEMAIL),
    ("no answer", Outcome.NO_ANSWER),
    ("busy", Outcome.BUSY),
    ("failed", Outcome.FAILED),
    ("voicemail left", Outcome.VOICEMAIL_LEFT),
    ("fax", Outcome.FAX),
)


def build_summary(
    campaign: dict[str, Any], import_report: dict[str, Any] | None
) -> dict[str, Any]:
    calls = campaign["calls_by_outcome"]
    summary: dict[str, Any] = {
        "campaign_id": campaign["id"],
        "status": campaign["status"],
        "contacts": campaign["members"],
        "calls_placed": campaign["calls_placed"],
        **{
            key.replace(" ", "_"): calls.get(outcome, 0)
            for key, outcome in OUTCOME_ROWS
        },
        "contacts_by_state": campaign["members_by_state"],
        "not_called": campaign["not_called_by_reason"],
        "waiting": campaign["waiting_by_reason"],
        "waiting_contacts": campaign["members_by_state"].get(MemberState.WAITING, 0),
        "next_attempt_at": campaign["next_attempt_at"],
        "expected_finish_at": campaign["expected_finish_at"],
        "lines_in_use": campaign["lines_in_use"],
    }
    if import_report is not None:
        summary["rejected_rows"] = import_report["rejected"]
        summary["duplicate_rows"] = len(import_report["duplicates"])
    return summary


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title=f"Campaign {summary['campaign_id']} ({summary['status']})")
    table.add_column("", style="bold")
    table.add_column("count", justify="right")
    table.add_row("contacts", str(summary["contacts"]))
    for state, count in sorted(summary["contacts_by_state"].items()):
        table.add_row(f"  {state.replace('_', ' ')}", str(count))
    table.add_row("calls placed", str(summary["calls_placed"]))
    for label, _outcome in OUTCOME_ROWS:
        table.add_row(f"  {label}", str(summary[label.replace(" ", "_")]))
    for reason, count in sorted(summary["not_called"].items()):
        table.add_row(f"not called: {reason}", str(count))
    if summary["waiting_contacts"]:
        table.add_row(
            f"waiting (next at {summary['next_attempt_at']})",
            str(summary["waiting_contacts"]),
        )
        for reason, count in sorted(summary["waiting"].items()):
            table.add_row(f"  {reason}", str(count))
    table.add_row("lines in use", str(summary["lines_in_use"]))
    if summary["expected_finish_at"]:
        table.add_row(
            f"expected finish (estimate): {summary['expected_finish_at']}", ""
        )
    if "rejected_rows" in summary:
        table.add_row("rejected rows", str(len(summary["rejected_rows"])))
        table.add_row("duplicate rows merged", str(summary["duplicate_rows"]))
    console.print(table)
    for rejected in summary.get("rejected_rows", []):
        console.print(f"  row {rejected['row']}: {rejected['reason']}")
