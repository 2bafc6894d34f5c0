"""When a contact may lawfully be called: windows, places and state rules."""

from rules.decide import HORIZON, TimeVerdict, decide_time
from rules.places import (
    ContactPlace,
    PlaceError,
    locate,
    normalize_state,
    validate_timezone,
)
from rules.states import STATE_RULES, StateRule
from rules.window import CallingWindow, WindowError, validate_window

__all__ = [
    "HORIZON",
    "STATE_RULES",
    "CallingWindow",
    "ContactPlace",
    "PlaceError",
    "StateRule",
    "TimeVerdict",
    "WindowError",
    "decide_time",
    "locate",
    "normalize_state",
    "validate_timezone",
    "validate_window",
]
