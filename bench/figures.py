"""The one-line result that every benchmark prints last, and a shared CLI."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

MET = "met"
MISSED = "missed"


@dataclass(frozen=True)
class Figure:
    """A measured figure against its target, printed as one line.

    ``value`` and ``target`` are single words (no spaces), so that
    ``bench.run_all`` can read the line back.
    """

    name: str
    value: str
    target: str
    met: bool

    def line(self) -> str:
        return f"{self.name} {self.value} {self.target} {MET if self.met else MISSED}"


def parse_figure(line: str) -> Figure | None:
    """Read a line printed by :meth:`Figure.line`; None for any other line."""
    parts = line.split()
    if len(parts) != 4 or parts[3] not in (MET, MISSED):
        return None
    return Figure(parts[0], parts[1], parts[2], parts[3] == MET)


def argument_parser(description: str) -> argparse.ArgumentParser:
    """Build a parser with the options every engine benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the engine's database (PostgreSQL at $OUTBOUND_BENCH_POSTGRES_URL)",
    )
    return parser


def quiet_logging() -> None:
    """Keep library logs out of the benchmark's printed figures."""
    logging.basicConfig(level=logging.WARNING)
