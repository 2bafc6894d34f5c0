"""The simulator's HTTP API: Twilio's Calls resource and a control API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response

from telephony.scenario import Scenario
from telephony.simulator.agent import AGENT_VOICE_PATH
from telephony.simulator.calls import (
    API_PREFIX,
    CALLS_RESOURCE_ERROR,
    SimulatorError,
)
from telephony.simulator.config import AgentRole, Faults, SimulatorConfig
from telephony.simulator.forms import parse_create_form
from telephony.simulator.listing import ListQueryError
from telephony.simulator.state import CreateResult, Simulator

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sim"
# How often a held create response checks whether its client went away.
_DISCONNECT_POLL_SECONDS = 0.05

_Parsed = TypeVar("_Parsed")


def create_simulator_app(config: SimulatorConfig) -> FastAPI:
    """Build the ASGI app of one simulated Twilio account."""
    simulator = Simulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.close()

    app = FastAPI(title="Twilio-compatible simulator", lifespan=lifespan)
    app.state.simulator = simulator
    app.add_exception_handler(SimulatorError, _simulator_error_response)
    app.include_router(_twilio_router())
    app.include_router(_control_router())
    app.include_router(_agent_router())
    return app


def run_simulator(host: str, port: int, config: SimulatorConfig) -> None:
    """Serve the simulator until interrupted, for use in its own process."""
    logger.info("simulator listening on http://%s:%s", host, port)
    uvicorn.run(
        create_simulator_app(config),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
    )


def _get_simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


SimulatorDep = Annotated[Simulator, Depends(_get_simulator)]


def _authenticate(
    account_sid: str, request: Request, simulator: SimulatorDep
) -> Simulator:
    username, password = _basic_credentials(request.headers.get("authorization"))
    simulator.check_account(account_sid, username, password)
    return simulator


AccountDep = Annotated[Simulator, Depends(_authenticate)]


def _twilio_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX + "/{account_sid}")

    @router.post("/Calls.json", status_code=status.HTTP_201_CREATED)
    async def create_call(request: Request, simulator: AccountDep) -> JSONResponse:
        """Create a call (Twilio: POST Calls.json)."""
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        events = [str(value) for value in form.getlist("StatusCallbackEvent")]
        simulator.voice.base_url = str(request.base_url).rstrip("/")
        result = simulator.create_call(parse_create_form(fields, events))
        await _hold_response(request, result, simulator.config)
        return JSONResponse(result.resource, status_code=status.HTTP_201_CREATED)

    @router.get("/Calls.json")
    async def list_calls(
        account_sid: str, request: Request, simulator: AccountDep
    ) -> JSONResponse:
        """List calls, newest first, with Twilio's filters and paging."""
        try:
            page = simulator.list_calls(account_sid, dict(request.query_params))
        except ListQueryError as error:
            raise SimulatorError(
                status.HTTP_400_BAD_REQUEST, CALLS_RESOURCE_ERROR, str(error)
            ) from None
        return JSONResponse(page)

    @router.get("/Calls/{call_sid}.json")
    async def fetch_call(call_sid: str, simulator: AccountDep) -> JSONResponse:
        """Fetch one call."""
        return JSONResponse(simulator.fetch_call(call_sid))

    @router.post("/Calls/{call_sid}.json")
    async def update_call(
        call_sid: str, request: Request, simulator: AccountDep
    ) -> JSONResponse:
        """End a call with Status=canceled or Status=completed."""
        form = await request.form()
        new_status = form.get("Status")
        resource = simulator.update_call(
            call_sid, None if new_status is None else str(new_status)
        )
        return JSONResponse(resource)

    return router


def _control_router() -> APIRouter:
    router = APIRouter(prefix=CONTROL_PREFIX)

    @router.get("/stats")
    async def read_stats(simulator: SimulatorDep) -> dict[str, Any]:
        """Return the counters: live calls, their maximum, creates, callbacks."""
        return simulator.stats()

    @router.get("/calls")
    async def read_calls(simulator: SimulatorDep) -> list[dict[str, Any]]:
        """List every call created since the last reset, oldest first."""
        return list(simulator.call_summaries())

    @router.post("/reset", status_code=status.HTTP_204_NO_CONTENT)
    async def reset(simulator: SimulatorDep) -> None:
        """Forget all calls and counters. The scenario and faults stay as set."""
        simulator.reset()

    @router.get("/scenario")
    async def read_scenario(simulator: SimulatorDep) -> dict[str, Any]:
        return simulator.scenario.to_dict()

    @router.put("/scenario")
    async def replace_scenario(
        request: Request, simulator: SimulatorDep
    ) -> dict[str, Any]:
        """Replace the scenario. Calls already created keep their outcome."""
        scenario = await _parse_body(request, Scenario.from_dict)
        simulator.set_scenario(scenario)
        return scenario.to_dict()

    @router.get("/agent")
    async def read_agent(simulator: SimulatorDep) -> dict[str, Any] | None:
        """Return the engine the simulator plays the agent for, or null."""
        role = simulator.agent
        return None if role is None else role.to_dict()

    @router.put("/agent")
    async def replace_agent(
        request: Request, simulator: SimulatorDep
    ) -> dict[str, Any]:
        """Play the agent for an engine: {"engine_url": ..., "token": ...}."""
        role = await _parse_body(request, AgentRole.from_dict)
        simulator.set_agent(role)
        return role.to_dict()

    @router.delete("/agent", status_code=status.HTTP_204_NO_CONTENT)
    async def stop_agent(simulator: SimulatorDep) -> None:
        """Stop playing the agent: answered calls no longer request their Url."""
        simulator.set_agent(None)

    @router.get("/faults")
    async def read_faults(simulator: SimulatorDep) -> dict[str, Any]:
        return simulator.faults.to_dict()

    @router.put("/faults")
    async def replace_faults(
        request: Request, simulator: SimulatorDep
    ) -> dict[str, Any]:
        """Replace the faults. A fault left out of the body is turned off."""
        faults = await _parse_body(request, Faults.from_dict)
        simulator.set_faults(faults)
        return faults.to_dict()

    return router


def _agent_router() -> APIRouter:
    router = APIRouter()

    @router.post(AGENT_VOICE_PATH)
    async def agent_voice(request: Request, simulator: SimulatorDep) -> Response:
        """The stand-in agent's voice URL: fetch the context, hold the call."""
        form = await request.form()
        call = simulator.find_call(str(form.get("CallSid", "")))
        twiml = await simulator.voice.connect_agent(call)
        return Response(twiml, media_type="application/xml")

    return router


async def _hold_response(
    request: Request, result: CreateResult, config: SimulatorConfig
) -> None:
    if result.hold_until_disconnect:
        await _wait_for_disconnect(request, config.dropped_response_hold_seconds)
    elif result.hold_seconds > 0:
        await asyncio.sleep(result.hold_seconds)


async def _wait_for_disconnect(request: Request, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(_DISCONNECT_POLL_SECONDS)


async def _parse_body(
    request: Request, parse: Callable[[dict[str, Any]], _Parsed]
) -> _Parsed:
    """Parse a JSON object body, turning every problem into a 400 response."""
    try:
        body = await request.json()
    except ValueError:
        raise _bad_control_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad_control_request("the request body must be a JSON object")
    try:
        return parse(body)
    except (TypeError, ValueError) as error:
        raise _bad_control_request(str(error)) from None


def _bad_control_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=message)


def _basic_credentials(header: str | None) -> tuple[str, str]:
    """Return the user name and password of a Basic Authorization header.

    A missing or malformed header gives empty credentials, which fail the
    account check like wrong ones.
    """
    if header is None or not header.lower().startswith("basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


async def _simulator_error_response(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SimulatorError)
    headers = None
    if error.http_status == status.HTTP_401_UNAUTHORIZED:
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
    return JSONResponse(error.body(), status_code=error.http_status, headers=headers)
