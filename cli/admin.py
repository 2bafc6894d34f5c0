"""Operator commands for a deployment: ``outbound admin ...``.

Each command reads the same ``OUTBOUND_*`` settings as the API and the worker,
so it reaches the same Temporal namespace and database they use. The module
also runs on its own (``python -m cli.admin ...``), which is how the compose
file calls it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, NoReturn, TypeVar

import httpx
import sqlalchemy as sa
import typer
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from config import Settings, SettingsError, load_settings
from store.db import make_engine
from workflows import names
from workflows.client import connect_temporal

logger = logging.getLogger(__name__)

admin = typer.Typer(
    help="Operator tasks for a deployment: Temporal set-up and health checks.",
    no_args_is_help=True,
    add_completion=False,
)

_T = TypeVar("_T")

# Temporal returns NOT_FOUND for a namespace created a moment ago until its
# namespace cache refreshes, and UNAVAILABLE while the frontend starts.
TRANSIENT_STATUSES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.DEADLINE_EXCEEDED,
    }
)
RETRY_INTERVAL_SECONDS = 2.0
DEFAULT_WAIT_SECONDS = 120.0

# The worker's metrics, as the Temporal SDK names them (default prefix
# "temporal_"). A worker type is healthy while it polls, or while every slot is
# taken, when the SDK stops polling until one frees up.
POLLERS_METRIC = "temporal_num_pollers"
FREE_SLOTS_METRIC = "temporal_worker_task_slots_available"
WORKER_TYPES = (
    ("workflow_task", "WorkflowWorker"),
    ("activity_task", "ActivityWorker"),
)
METRIC_SAMPLE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
METRIC_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to keep retrying while Temporal is unreachable or the "
        "namespace is not found yet.",
    ),
]


class SearchAttributeConflict(Exception):
    """Raised when a search attribute exists with another type than ours."""


@dataclass(frozen=True)
class RegistrationResult:
    """Search attributes added by this run, and those that were already there."""

    added: tuple[str, ...]
    existing: tuple[str, ...]


async def register_search_attributes(
    client: Client,
    namespace: str,
    keys: Sequence[SearchAttributeKey] = names.SEARCH_ATTRIBUTES,
) -> RegistrationResult:
    """Add the missing search attributes to ``namespace``, keeping existing ones.

    Raises:
        SearchAttributeConflict: a name is registered with another type.
    """
    current = await _custom_attributes(client, namespace)
    missing = [key for key in keys if key.name not in current]
    existing = tuple(key.name for key in keys if key.name in current)
    if missing:
        await _add(client, namespace, missing)
        # The list is read again: a concurrent registrar may have added a
        # name with another type, and that must not pass as success.
        current = await _custom_attributes(client, namespace)
    _check_types(current, keys)
    return RegistrationResult(
        added=tuple(key.name for key in missing), existing=existing
    )


async def _custom_attributes(client: Client, namespace: str) -> dict[str, int]:
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(response.custom_attributes)


async def _add(
    client: Client, namespace: str, keys: Sequence[SearchAttributeKey]
) -> None:
    request = AddSearchAttributesRequest(
        namespace=namespace,
        search_attributes={key.name: _indexed_type(key) for key in keys},
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as error:
        # Another process added them between our list and add.
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        logger.info("Search attributes were added concurrently: %s", error.message)


def _check_types(current: dict[str, int], keys: Sequence[SearchAttributeKey]) -> None:
    for key in keys:
        found = current.get(key.name)
        if found is None:
            raise SearchAttributeConflict(
                f"search attribute {key.name} is still missing after it was added"
            )
        if found != _indexed_type(key):
            raise SearchAttributeConflict(
                f"search attribute {key.name} is registered as "
                f"{IndexedValueType.Name(found)}, but Outbound needs "
                f"{IndexedValueType.Name(_indexed_type(key))}; remove it or use "
                "another namespace"
            )


def _indexed_type(key: SearchAttributeKey) -> int:
    # The SDK's enum mirrors the API's IndexedValueType numbers.
    return int(key.indexed_value_type.value)


def _is_transient(error: Exception) -> bool:
    if isinstance(error, RPCError):
        return error.status in TRANSIENT_STATUSES
    # Client.connect raises a bare RuntimeError when it cannot reach the server.
    return isinstance(error, RuntimeError) and str(error).startswith(
        "Failed client connect"
    )


async def retry_while_unavailable(
    action: Callable[[], Awaitable[_T]], *, wait_seconds: float
) -> _T:
    """Run ``action``, retrying transient Temporal failures for ``wait_seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        try:
            return await action()
        except (RPCError, RuntimeError) as error:
            if not _is_transient(error) or loop.time() >= deadline:
                raise
            logger.warning(
                "Temporal is not ready (%s), retrying in %s s",
                error,
                RETRY_INTERVAL_SECONDS,
            )
            await asyncio.sleep(RETRY_INTERVAL_SECONDS)


async def _register(settings: Settings, wait_seconds: float) -> RegistrationResult:
    async def attempt() -> RegistrationResult:
        client = await connect_temporal(settings)
        return await register_search_attributes(client, settings.temporal_namespace)

    return await retry_while_unavailable(attempt, wait_seconds=wait_seconds)


async def check_temporal(settings: Settings) -> None:
    """Connect with the settings and describe the namespace, or raise."""
    client = await connect_temporal(settings)
    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.temporal_namespace)
    )


def check_database(settings: Settings) -> None:
    """Open a connection to the configured database and run ``SELECT 1``."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def metrics_url(bind_address: str) -> str:
    """Return the URL of metrics served at ``bind_address``, seen from this host."""
    host, _, port = bind_address.rpartition(":")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    return f"http://{host}:{port}/metrics"


def read_worker_gauges(text: str, task_queue: str) -> dict[tuple[str, str], float]:
    """Read the poller and slot gauges of ``task_queue`` from Prometheus text.

    Keys are (metric, poller_type) for pollers and (metric, worker_type) for
    slots.
    """
    gauges: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        sample = METRIC_SAMPLE.match(line)
        if sample is None or sample["name"] not in (POLLERS_METRIC, FREE_SLOTS_METRIC):
            continue
        labels = dict(METRIC_LABEL.findall(sample["labels"]))
        if labels.get("task_queue") != task_queue:
            continue
        kind = labels.get("poller_type") or labels.get("worker_type", "")
        gauges[(sample["name"], kind)] = float(sample["value"])
    return gauges


def find_worker_problems(metrics_text: str, task_queue: str) -> list[str]:
    """Return why the worker is unhealthy, or nothing when it polls."""
    gauges = read_worker_gauges(metrics_text, task_queue)
    problems = []
    for poller_type, worker_type in WORKER_TYPES:
        pollers = gauges.get((POLLERS_METRIC, poller_type), 0.0)
        free_slots = gauges.get((FREE_SLOTS_METRIC, worker_type))
        if pollers > 0 or free_slots == 0:
            continue
        problems.append(
            f"no {poller_type} poller on task queue {task_queue} "
            f"while {worker_type} has {free_slots} free slots"
        )
    return problems


def _exit_process(status: int) -> NoReturn:
    """End the process at once with ``status``, after flushing the output.

    The Temporal SDK can abort the interpreter while it finalizes after a
    client connected ("Fatal Python error: PyGILState_Release"), which turns a
    finished command's status into SIGABRT. Compose's depends_on reads that
    status, so commands that connected to Temporal end here instead.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _settings() -> Settings:
    from cli.logs import configure_logging

    try:
        settings = load_settings()
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


@admin.command("register-search-attributes")
def register_search_attributes_command(
    wait: WaitOption = DEFAULT_WAIT_SECONDS,
) -> None:
    """Register Outbound's search attributes on the configured namespace.

    Attributes that already exist with the right type are left as they are,
    so running the command again succeeds.
    """
    settings = _settings()
    try:
        result = asyncio.run(_register(settings, wait))
    except (RPCError, RuntimeError, SearchAttributeConflict) as error:
        typer.echo(
            f"Registering search attributes on namespace "
            f"{settings.temporal_namespace} at {settings.temporal_address} "
            f"failed: {error}",
            err=True,
        )
        _exit_process(1)
    where = f"namespace {settings.temporal_namespace} at {settings.temporal_address}"
    for name in result.added:
        typer.echo(f"Added search attribute {name} (Keyword) to {where}.")
    for name in result.existing:
        typer.echo(f"Search attribute {name} already exists on {where}.")
    _exit_process(0)


@admin.command("check")
def check_command() -> None:
    """Check that Temporal and the database respond with the configured settings.

    Exits with status 1 and names the part that failed, so an operator can
    run it inside a container to test that container's settings.
    """
    settings = _settings()
    failed = False
    try:
        asyncio.run(check_temporal(settings))
        typer.echo(
            f"Temporal: ok ({settings.temporal_address}, "
            f"namespace {settings.temporal_namespace})"
        )
    except (RPCError, RuntimeError) as error:
        typer.echo(f"Temporal: failed: {error}", err=True)
        failed = True
    try:
        check_database(settings)
        typer.echo("Database: ok")
    except sa.exc.SQLAlchemyError as error:
        # The driver's own message names the host and the user, not the
        # password. SQLAlchemy's wrapper adds only the statement and a link.
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        typer.echo(f"Database: failed: {reason}", err=True)
        failed = True
    _exit_process(1 if failed else 0)


@admin.command("check-worker")
def check_worker_command(
    url: Annotated[
        str | None,
        typer.Option(
            "--metrics-url",
            help="The worker's metrics URL. By default it is built from "
            "OUTBOUND_METRICS_BIND_ADDRESS, on this host.",
        ),
    ] = None,
) -> None:
    """Check from its metrics that the worker on this host polls its task queue.

    Exits with status 1 when the metrics cannot be read or show no poller.
    The compose file uses it as the worker's healthcheck.
    """
    settings = _settings()
    if url is None:
        if not settings.metrics_bind_address:
            typer.echo(
                "OUTBOUND_METRICS_BIND_ADDRESS is not set, so the worker serves "
                "no metrics to check; set it or give --metrics-url",
                err=True,
            )
            raise typer.Exit(2)
        url = metrics_url(settings.metrics_bind_address)
    try:
        response = httpx.get(url, timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError as error:
        typer.echo(f"Worker metrics at {url} could not be read: {error}", err=True)
        raise typer.Exit(1) from None
    problems = find_worker_problems(response.text, settings.task_queue)
    for problem in problems:
        typer.echo(f"Worker unhealthy: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"Worker polls task queue {settings.task_queue}")


if __name__ == "__main__":
    admin()
