"""Replay recorded histories: a change that breaks determinism fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.campaign import CampaignWorkflow
from workflows.contact import ContactWorkflow

HISTORY_DIR = Path(__file__).parent.parent / "histories"
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))


def test_histories_are_checked_in():
    names = {path.name.rsplit("-", 1)[0] for path in HISTORIES}

    assert {"twenty-contacts", "pause"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_history_replays(path: Path):
    record = json.loads(path.read_text())
    history = WorkflowHistory.from_json(record["workflow_id"], record["history"])
    replayer = Replayer(workflows=[CampaignWorkflow, ContactWorkflow])

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None
