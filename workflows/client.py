"""Connecting to Temporal with the process settings."""

from __future__ import annotations

from temporalio.client import Client

from config import Settings


async def connect_temporal(settings: Settings) -> Client:
    """Connect to the configured Temporal, with TLS and an API key for Cloud."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=settings.temporal_tls,
        api_key=settings.temporal_api_key,
    )
