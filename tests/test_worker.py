"""The worker process: metrics for Prometheus and a clean stop."""

from __future__ import annotations

import asyncio
import socket

import httpx

from config import Settings
from tests.conftest import eventually
from worker import run_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_worker_serves_metrics(dev_env, sqlite_db, task_queue):
    port = free_port()
    settings = Settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=task_queue,
        database_url=sqlite_db.url,
        twilio_account_sid="AC" + "2" * 32,
        twilio_auth_token="token",
        telephony_api_url="http://127.0.0.1:9",
        metrics_bind_address=f"127.0.0.1:{port}",
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop))

    async def scrape() -> str | None:
        async with httpx.AsyncClient() as client:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
            except httpx.HTTPError:
                return None
        return response.text if "temporal_" in response.text else None

    body = await eventually(scrape, timeout=30)
    stop.set()
    await asyncio.wait_for(running, timeout=60)

    assert "temporal_worker" in body or "temporal_request" in body
    assert running.exception() is None
