"""The simulator playing the agent: TwiML followed, context read, report sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from telephony.scenario import AgentResult, Scenario
from telephony.simulator import CONTROL_PREFIX, SimulatorConfig
from telephony.simulator.config import DEFAULT_AUTH_TOKEN, AgentRole
from telephony.testing import SimulatorServer, eventually, serve_in_thread

NUMBER = "+12025550170"
CALLER = "+12025550100"
TOKEN = "agent-token"
SCENARIO = Scenario(
    numbers={NUMBER: ("human",)},
    agent_results={NUMBER: AgentResult(labels=("interested",))},
    time_scale=0.0,
)


@dataclass
class FakeEngine:
    """The engine's side of a call: voice TwiML, context, report, recording."""

    twiml: str = ""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/voice", self._twilio, methods=["POST"]),
                Route("/status", self._twilio, methods=["POST"]),
                Route("/recording", self._twilio, methods=["POST"]),
                Route("/calls/{sid}/context", self._context, methods=["GET"]),
                Route("/calls/{sid}/report", self._report, methods=["POST"]),
            ]
        )

    def received(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for where, body in self.requests if where == path]

    def _note(self, path: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append((path, body))

    async def _twilio(self, request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        signed = RequestValidator(DEFAULT_AUTH_TOKEN).validate(
            str(request.url), params, request.headers.get("X-Twilio-Signature", "")
        )
        self._note(request.url.path, {**params, "signed": signed})
        if request.url.path == "/voice":
            return Response(self.twiml, media_type="application/xml")
        return Response(status_code=204)

    async def _context(self, request: Request) -> Response:
        auth = request.headers.get("Authorization")
        self._note("/context", {"authorization": auth})
        return JSONResponse({"purpose": "Call Ana about the renewal."})

    async def _report(self, request: Request) -> Response:
        self._note("/report", await request.json())
        return JSONResponse({"stored": True}, status_code=201)


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    fake = FakeEngine()
    with serve_in_thread(fake.app(), name="fake-engine") as url:
        fake.url = url
        yield fake


@pytest.fixture
def simulator(engine: FakeEngine) -> Iterator[SimulatorServer]:
    role = AgentRole(engine_url=engine.url, token=TOKEN)
    config = SimulatorConfig(scenario=SCENARIO, agent=role)
    with SimulatorServer(config) as server:
        yield server


def agent_twiml(simulator: SimulatorServer, engine: FakeEngine) -> str:
    return (
        "<Response>"
        f'<Start><Recording recordingStatusCallback="{engine.url}/recording"/></Start>'
        "<Say>One moment.</Say>"
        f"<Redirect>{simulator.url}/agent/voice</Redirect>"
        "</Response>"
    )


def place_call(simulator: SimulatorServer, engine: FakeEngine) -> str:
    return simulator.provider().create_call(
        to=NUMBER,
        from_=CALLER,
        voice_url=f"{engine.url}/voice",
        status_callback=f"{engine.url}/status",
        ring_timeout=25,
        machine_detection=True,
        send_digits=None,
    )


def voice_of(simulator: SimulatorServer) -> dict[str, Any]:
    return simulator.calls()[0]["voice"]


def test_voice_request_signed_with_answered_by(simulator, engine):
    engine.twiml = agent_twiml(simulator, engine)

    sid = place_call(simulator, engine)

    request = eventually(lambda: engine.received("/voice"))[0]
    assert request["signed"] is True
    assert request["CallSid"] == sid
    assert request["AnsweredBy"] == "human"


def test_agent_reads_context_with_token(simulator, engine):
    engine.twiml = agent_twiml(simulator, engine)

    place_call(simulator, engine)

    context = eventually(lambda: engine.received("/context"))[0]
    assert context["authorization"] == f"Bearer {TOKEN}"


def test_agent_reports_scenario_labels(simulator, engine):
    engine.twiml = agent_twiml(simulator, engine)

    place_call(simulator, engine)

    report = eventually(lambda: engine.received("/report"))[0]
    assert report["labels"] == ["interested"]
    assert "Call Ana about the renewal." in report["transcript"]


def test_recording_callback_signed(simulator, engine):
    engine.twiml = agent_twiml(simulator, engine)

    sid = place_call(simulator, engine)

    callback = eventually(lambda: engine.received("/recording"))[0]
    assert callback["signed"] is True
    assert callback["CallSid"] == sid
    assert callback["RecordingStatus"] == "completed"
    assert callback["RecordingSid"].startswith("RE")


def test_say_noted_before_redirect(simulator, engine):
    engine.twiml = agent_twiml(simulator, engine)

    place_call(simulator, engine)

    eventually(lambda: engine.received("/report"))
    assert voice_of(simulator)["played"] == ["say: One moment."]
    assert voice_of(simulator)["documents"] == 2


def test_hangup_ends_call_without_agent(simulator, engine):
    engine.twiml = "<Response><Say>Goodbye.</Say><Hangup/></Response>"

    place_call(simulator, engine)

    eventually(lambda: simulator.calls()[0]["status"] == "completed")
    assert voice_of(simulator)["hung_up"] is True
    assert voice_of(simulator)["agent_connected"] is False
    assert engine.received("/report") == []


def test_invalid_twiml_hangs_up(simulator, engine):
    engine.twiml = "<Response><Say>unclosed"

    place_call(simulator, engine)

    eventually(lambda: simulator.calls()[0]["status"] == "completed")
    assert voice_of(simulator)["error"].startswith("invalid TwiML")


def test_without_role_url_not_requested(engine):
    config = SimulatorConfig(scenario=SCENARIO)
    with SimulatorServer(config) as simulator:
        place_call(simulator, engine)
        eventually(lambda: engine.received("/status"))

    assert engine.received("/voice") == []


def test_control_sets_and_hides_role(simulator, engine):
    url = f"{simulator.url}{CONTROL_PREFIX}/agent"

    put = httpx.put(
        url, json={"engine_url": engine.url, "token": "other"}, trust_env=False
    )
    read = httpx.get(url, trust_env=False)

    assert put.status_code == 200
    assert read.json() == {
        "engine_url": engine.url,
        "has_token": True,
        "request_attempts": 3,
    }


def test_control_rejects_unknown_role_keys(simulator):
    url = f"{simulator.url}{CONTROL_PREFIX}/agent"

    body = {"engine_url": "http://127.0.0.1:9", "x": 1}
    response = httpx.put(url, json=body, trust_env=False)

    assert response.status_code == 400


def test_scenario_agent_results_round_trip():
    assert Scenario.from_dict(SCENARIO.to_dict()) == SCENARIO


def test_scenario_unknown_agent_result_key_rejected():
    with pytest.raises(ValueError, match="unknown agent result keys"):
        Scenario.from_dict({"agent_result": {"lables": ["x"]}})
