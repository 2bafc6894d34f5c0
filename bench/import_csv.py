"""Seconds and peak memory to import a large contact CSV file.

    python -m bench.import_csv [--rows 100000] [--database sqlite]

The file looks like a CRM export: a phone column, names, an email and two
more columns that become the agent's variables. The import runs in a child
process (``--file``), so its peak resident memory (VmHWM) is the import's
own and not the benchmark's. This figure is reported; it has no target.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cpu import machine_load, status_kib
from bench.figures import Figure, argument_parser, quiet_logging
from bench.numbers import open_numbers
from bench.stack import bench_database
from contacts.store import import_contacts
from store.db import Database

KIB_PER_MIB = 1024


def write_export(path: Path, rows: int) -> None:
    """Write ``rows`` contacts in the shape of a CRM export."""
    numbers = open_numbers(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["First Name", "Last Name", "Phone 1", "Email", "Company", "Plan"])
    for index, number in enumerate(numbers):
        writer.writerow(
            [
                f"First{index}",
                f"Last{index}",
                number,
                f"person{index}@example.com",
                f"Company {index % 500}",
                ("basic", "pro", "team")[index % 3],
            ]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")


def import_file(path: Path, database_url: str) -> dict[str, float]:
    """Import the file into the database; return seconds, rows and memory."""
    db = Database(database_url)
    before_kib = status_kib_self("VmRSS")
    started = time.perf_counter()
    with path.open("rb") as stream:
        report = import_contacts(db, stream, filename=path.name)
    seconds = time.perf_counter() - started
    db.dispose()
    return {
        "seconds": seconds,
        "created": report.created,
        "rejected": len(report.rejected),
        "rss_before_kib": before_kib,
        "peak_kib": status_kib_self("VmHWM"),
    }


def status_kib_self(field: str) -> int:
    return status_kib(os.getpid(), field)


def measure(rows: int, database: str) -> Figure:
    print(f"rows: {rows}, database: {database}, {machine_load()}")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        path = Path(tmp) / "export.csv"
        write_export(path, rows)
        size_mib = path.stat().st_size / KIB_PER_MIB / KIB_PER_MIB
        with bench_database(database, Path(tmp)) as db:
            command = [sys.executable, "-m", "bench.import_csv", "--file", str(path)]
            command += ["--database-url", db.url]
            output = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    peak_mib = result["peak_kib"] / KIB_PER_MIB
    print(
        f"file: {size_mib:.1f} MiB, created {result['created']}, rejected {result['rejected']}"
    )
    print(f"import: {seconds:.1f} s, {rows / seconds:.0f} rows/s")
    print(
        f"process memory: {result['rss_before_kib'] / KIB_PER_MIB:.0f} MiB before, "
        f"peak {peak_mib:.0f} MiB, so the import added "
        f"{peak_mib - result['rss_before_kib'] / KIB_PER_MIB:.0f} MiB"
    )
    print(f"after the run: {machine_load()}")
    return Figure("import", f"{seconds:.1f}s/{peak_mib:.0f}MiB", "report", True)


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logging()
    if args.file is not None:
        print(json.dumps(import_file(args.file, args.database_url)))
        return
    print(measure(args.rows, args.database).line())


if __name__ == "__main__":
    main()
