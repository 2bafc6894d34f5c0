"""Command line: python -m telephony.simulator --port 8081 --scenario FILE."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from telephony.scenario import Scenario
from telephony.simulator.app import run_simulator
from telephony.simulator.config import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    AgentRole,
    Faults,
    SimulatorConfig,
)

# Read when --auth-token is not given, so the token is not on the command line.
AUTH_TOKEN_VARIABLE = "OUTBOUND_SIMULATOR_AUTH_TOKEN"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m telephony.simulator",
        description="Serve a Twilio-compatible API that plays calls from a scenario.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8081, help="TCP port to bind")
    parser.add_argument(
        "--scenario", type=Path, help="scenario JSON file (default: every call human)"
    )
    parser.add_argument("--faults", type=Path, help="faults JSON file (default: none)")
    parser.add_argument(
        "--account-sid", default=DEFAULT_ACCOUNT_SID, help="account SID clients use"
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get(AUTH_TOKEN_VARIABLE, DEFAULT_AUTH_TOKEN),
        help=(
            "auth token clients use; it also signs the status callbacks "
            f"(default: ${AUTH_TOKEN_VARIABLE}, which keeps it out of `ps`)"
        ),
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        help="wall-clock seconds per scenario second; overrides the scenario's",
    )
    parser.add_argument(
        "--agent-engine-url",
        help="play the voice agent for the engine's API at this base URL",
    )
    parser.add_argument(
        "--agent-token",
        help="the agent's bearer token for the engine's call endpoints",
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    scenario = (
        Scenario() if args.scenario is None else Scenario.from_file(args.scenario)
    )
    if args.time_scale is not None:
        scenario = dataclasses.replace(scenario, time_scale=args.time_scale)
    faults = Faults()
    if args.faults is not None:
        faults = Faults.from_dict(json.loads(args.faults.read_text(encoding="utf-8")))
    agent = None
    if args.agent_engine_url is not None:
        agent = AgentRole(engine_url=args.agent_engine_url, token=args.agent_token)
    return SimulatorConfig(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        scenario=scenario,
        faults=faults,
        agent=agent,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run_simulator(args.host, args.port, build_config(args))


if __name__ == "__main__":
    main()
