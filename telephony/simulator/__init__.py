"""A local Twilio-compatible server that plays calls from a scenario.

The real ``twilio`` SDK runs unchanged against it once pointed at it with
``client.api.base_url``. Run it on its own with
``python -m telephony.simulator --port 8081``.
"""

from telephony.simulator.app import CONTROL_PREFIX, create_simulator_app, run_simulator
from telephony.simulator.config import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    Faults,
    SimulatorConfig,
)

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "Faults",
    "SimulatorConfig",
    "create_simulator_app",
    "run_simulator",
]
