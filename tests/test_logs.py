"""Process logging: plain lines, or one JSON object per line when asked."""

from __future__ import annotations

import json
import logging

import pytest

from cli.logs import configure_logging
from config import Settings


@pytest.fixture(autouse=True)
def restore_root_logger():
    """Give back pytest's own handlers, which configure_logging replaces."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_when_asked(capsys):
    configure_logging(Settings(log_json=True))

    logging.getLogger("outbound.test").info("Campaign %s started", 42)

    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "Campaign 42 started"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "outbound.test"


def test_plain_logs_by_default(capsys):
    configure_logging(Settings())

    logging.getLogger("outbound.test").info("Campaign %s paused", 7)

    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith("INFO outbound.test: Campaign 7 paused")


def test_twilio_request_logs_quiet(capsys):
    configure_logging(Settings())

    logging.getLogger("twilio.http_client").info("POST Request: ...")

    assert "POST Request" not in capsys.readouterr().err
