"""Settings come from OUTBOUND_* variables, and errors name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import worker
from config import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR_URL = "http://127.0.0.1:9"
ACCOUNT_SID = "AC" + "1" * 32

# A value for every field, written as it appears in the environment, and the
# value the field must take from it. Each differs from the field's default, so a
# variable that is not read fails its test.
SAMPLES: dict[str, tuple[str, object]] = {
    "data_dir": ("/srv/outbound", Path("/srv/outbound")),
    "database_url": (
        "postgresql+psycopg://outbound@db:5432/outbound",
        "postgresql+psycopg://outbound@db:5432/outbound",
    ),
    "temporal_address": ("temporal.internal:7233", "temporal.internal:7233"),
    "temporal_namespace": ("outbound-prod", "outbound-prod"),
    "temporal_tls": ("true", True),
    "temporal_api_key": ("temporal-key", "temporal-key"),
    "task_queue": ("calls", "calls"),
    "workflow_id_prefix": ("prod-", "prod-"),
    "api_key": ("management-key", "management-key"),
    "public_base_url": ("https://calls.example.com", "https://calls.example.com"),
    "twilio_account_sid": (ACCOUNT_SID, ACCOUNT_SID),
    "twilio_auth_token": ("auth-token", "auth-token"),
    "telephony_api_url": (SIMULATOR_URL, SIMULATOR_URL),
    "default_region": ("gb", "GB"),
    "plan_line_limit": ("7", 7),
    "calls_per_second": ("2.5", 2.5),
    "line_lease_seconds": ("600", 600),
    "do_not_call_labels": ('["stop", "remove-me"]', ["stop", "remove-me"]),
    "plan_included_ai_calls": ("5000", 5000),
    "metrics_bind_address": ("0.0.0.0:9464", "0.0.0.0:9464"),
    "log_json": ("true", True),
    "log_level": ("DEBUG", "DEBUG"),
}


def variable(field: str) -> str:
    return f"OUTBOUND_{field.upper()}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OUTBOUND_* variable from outside, and no .env file in reach."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("OUTBOUND_"):
            monkeypatch.delenv(name)


def test_settings_samples_cover_every_field():
    assert set(SAMPLES) == set(Settings.model_fields)


@pytest.mark.parametrize("field", sorted(SAMPLES))
def test_settings_sample_differs_from_default(field):
    assert SAMPLES[field][1] != Settings.model_fields[field].default


@pytest.mark.parametrize("field", sorted(SAMPLES))
def test_settings_read_from_variable(monkeypatch, field):
    raw, expected = SAMPLES[field]
    monkeypatch.setenv(variable(field), raw)
    if field in ("twilio_account_sid", "twilio_auth_token"):
        # One credential alone is rejected unless a simulator is configured.
        monkeypatch.setenv("OUTBOUND_TELEPHONY_API_URL", SIMULATOR_URL)

    settings = load_settings()

    assert getattr(settings, field) == expected


def test_settings_missing_token_names_variable(monkeypatch):
    monkeypatch.setenv("OUTBOUND_TWILIO_ACCOUNT_SID", ACCOUNT_SID)

    with pytest.raises(SettingsError, match="OUTBOUND_TWILIO_AUTH_TOKEN"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OUTBOUND_PLAN_LINE_LIMIT", "zero"),
        ("OUTBOUND_PLAN_LINE_LIMIT", "0"),
        ("OUTBOUND_CALLS_PER_SECOND", "0"),
        ("OUTBOUND_DEFAULT_REGION", "USA"),
        ("OUTBOUND_TEMPORAL_TLS", "sometimes"),
        ("OUTBOUND_LINE_LEASE_SECONDS", "-1"),
    ],
)
def test_settings_invalid_value_names_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_settings_list_not_json_names_variable(monkeypatch):
    monkeypatch.setenv("OUTBOUND_DO_NOT_CALL_LABELS", "stop")

    with pytest.raises(SettingsError, match="OUTBOUND_DO_NOT_CALL_LABELS"):
        load_settings()


def test_worker_provider_needs_account_sid():
    settings = Settings(telephony_api_url=SIMULATOR_URL)

    with pytest.raises(SettingsError, match="OUTBOUND_TWILIO_ACCOUNT_SID"):
        worker.make_provider(settings)


def test_worker_provider_needs_auth_token():
    settings = Settings(telephony_api_url=SIMULATOR_URL, twilio_account_sid=ACCOUNT_SID)

    with pytest.raises(SettingsError, match="OUTBOUND_TWILIO_AUTH_TOKEN"):
        worker.make_provider(settings)


def run_worker_without_token(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    env["OUTBOUND_TWILIO_ACCOUNT_SID"] = ACCOUNT_SID
    return subprocess.run(
        [sys.executable, "-m", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_worker_process_without_token_fails(tmp_path):
    result = run_worker_without_token(tmp_path)

    assert result.returncode != 0
    assert "OUTBOUND_TWILIO_AUTH_TOKEN" in result.stderr


def test_worker_process_without_token_prints_no_traceback(tmp_path):
    result = run_worker_without_token(tmp_path)

    assert "Traceback" not in result.stderr


# Documentation must list every variable, so it cannot fall behind config.py.


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_production_docs_list_variable(field):
    text = (ROOT / "docs" / "production.md").read_text()

    assert f"`{variable(field)}`" in text


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_env_example_lists_variable(field):
    lines = (ROOT / ".env.example").read_text().splitlines()
    assigned = {line.lstrip("# ").split("=", 1)[0] for line in lines if "=" in line}

    assert variable(field) in assigned
