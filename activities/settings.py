"""Campaign settings as stored in the database, read back as a dataclass."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from activities.types import CampaignSettings
from store.models import Campaign

_TUPLE_FIELDS = {"retry_outcomes", "window_days"}


def campaign_settings(campaign: Campaign) -> CampaignSettings:
    return settings_from_dict(campaign.settings)


def settings_from_dict(values: dict[str, Any]) -> CampaignSettings:
    known = {field.name for field in fields(CampaignSettings)}
    kwargs = {}
    for name, value in values.items():
        if name not in known:
            continue
        kwargs[name] = tuple(value) if name in _TUPLE_FIELDS else value
    return CampaignSettings(**kwargs)


def settings_to_dict(settings: CampaignSettings) -> dict[str, Any]:
    values = asdict(settings)
    for name in _TUPLE_FIELDS:
        values[name] = list(values[name])
    return values
