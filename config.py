"""Settings for every Outbound process, read once from the environment.

Every variable starts with ``OUTBOUND_`` and may also come from a ``.env`` file
in the working directory. The embedded default needs none of them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pydantic_settings
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".outbound")
TWILIO_API_URL = "https://api.twilio.com"


class SettingsError(RuntimeError):
    """Raised when a setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OUTBOUND_", env_file=".env", extra="ignore"
    )

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite in the data directory when unset.",
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool | None = Field(
        default=None,
        description="Use TLS to reach Temporal; unset means on when an API key is set.",
    )
    temporal_api_key: str | None = None
    task_queue: str = "outbound"
    workflow_id_prefix: str = Field(
        default="",
        description="Put before every workflow id, so deployments can share a namespace.",
    )

    api_key: str | None = Field(
        default=None, description="Key for the management API (X-API-Key)."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="URL at which the provider reaches this API's webhooks.",
    )

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    telephony_api_url: str | None = Field(
        default=None,
        description=(
            "Base URL of a Twilio-compatible API, such as the built-in simulator. "
            "Unset means real Twilio."
        ),
    )

    default_region: str = Field(default="US", min_length=2, max_length=2)
    plan_line_limit: int = Field(default=10, ge=1)
    calls_per_second: float = Field(default=1.0, gt=0)
    line_lease_seconds: int = Field(
        default=3 * 3600,
        ge=5,
        description=(
            "How long a line stays taken without a final status, after which a "
            "vanished holder's line comes back. Each call's TimeLimit ends it "
            "a minute before its lease runs out, less the ring timeout."
        ),
    )
    do_not_call_labels: list[str] = Field(
        default=["do-not-call"],
        description=(
            "Outcome labels from the agent that put the number on the "
            "do-not-call list, compared without regard to case."
        ),
    )
    plan_included_ai_calls: int = Field(
        default=1000,
        ge=0,
        description="AI calls (answered by a person, connected to the agent) "
        "included in the plan each month.",
    )
    metrics_bind_address: str | None = Field(
        default=None,
        description=(
            "host:port where the worker serves Temporal's metrics for Prometheus, "
            "such as 0.0.0.0:9464; unset serves none."
        ),
    )
    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _check_twilio(self) -> Settings:
        if self.telephony_api_url is None and self.uses_real_twilio_credentials():
            for name in ("twilio_account_sid", "twilio_auth_token"):
                if not getattr(self, name):
                    raise ValueError(
                        f"OUTBOUND_{name.upper()} is missing: real Twilio is "
                        "selected because OUTBOUND_TELEPHONY_API_URL is unset"
                    )
        return self

    def require_telephony(self) -> None:
        """Raise SettingsError unless the provider's credentials are set."""
        for name in ("twilio_account_sid", "twilio_auth_token"):
            if not getattr(self, name):
                raise SettingsError(
                    f"OUTBOUND_{name.upper()} is missing: it is needed to place "
                    "calls and to check the signature of status callbacks"
                )

    def uses_real_twilio_credentials(self) -> bool:
        return bool(self.twilio_account_sid or self.twilio_auth_token)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'outbound.db'}"

    @property
    def telephony_url(self) -> str:
        return self.telephony_api_url or TWILIO_API_URL


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one readable message."""
    try:
        return Settings()
    except pydantic_settings.SettingsError as error:
        # Raised for a list or dict variable that is not JSON; its message
        # names the field, not the variable.
        found = re.search(r'field "(\w+)"', str(error))
        variable = f"OUTBOUND_{found[1].upper()}" if found else "a setting"
        raise SettingsError(
            f"invalid settings: {variable}: not valid JSON; write lists as JSON, "
            'such as ["do-not-call"]'
        ) from None
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "_".join(str(part) for part in item["loc"]) or "settings"
            variable = f"OUTBOUND_{name.upper()}" if item["loc"] else name
            problems.append(f"{variable}: {item['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
