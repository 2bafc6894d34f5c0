"""Connecting to Temporal with the process settings."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config import Settings


async def connect_temporal(settings: Settings, *, with_metrics: bool = False) -> Client:
    """Connect to the configured Temporal, with TLS and an API key for Cloud.

    With ``with_metrics`` and a metrics address set, the SDK's metrics (task
    latencies, slots, polls) are served there for Prometheus to scrape.
    """
    runtime = None
    if with_metrics and settings.metrics_bind_address:
        metrics = PrometheusConfig(bind_address=settings.metrics_bind_address)
        runtime = Runtime(telemetry=TelemetryConfig(metrics=metrics))
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=(
            settings.temporal_tls
            if settings.temporal_tls is not None
            else bool(settings.temporal_api_key)
        ),
        api_key=settings.temporal_api_key,
        runtime=runtime,
    )
